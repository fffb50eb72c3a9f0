"""Whether a finished training run may be reused for a config."""
import os.path as osp

from mmengine.config import Config

#: The sections of a config that decide the trained model.
TRAINED_FROM = ('model', 'train_cfg', 'optim_wrapper', 'param_scheduler', 'train_dataloader',
                'custom_hooks', 'randomness')
#: Keys of ``train_cfg`` that say when a run validates, not what it trains.
VALIDATION_KEYS = ('val_begin', 'val_interval')


def _trained_from(cfg: Config) -> dict:
    cfg = cfg.to_dict()
    sections = {key: cfg.get(key) for key in TRAINED_FROM}
    for key in VALIDATION_KEYS:
        (sections['train_cfg'] or {}).pop(key, None)
    return sections


def check_trained_from(config: str, work_dir: str, cfg_options: dict) -> None:
    """Refuse a run in ``work_dir`` that a different version of ``config``
    trained.

    A study reuses the runs it finds under its work directory, keyed by the
    config's path; a config edited since (another head type, a longer
    schedule) would otherwise be scored by its old checkpoint. The config that
    mmengine dumped in the work directory (by training or by the test after
    it) is compared with ``config`` as it is now, with the same
    ``--cfg-options``, section by section (:data:`TRAINED_FROM`; not when it
    validates). A work directory without a dumped config is not checked.

    Args:
        config (str): path of the config the run should come from.
        work_dir (str): the run's work directory.
        cfg_options (dict): the ``--cfg-options`` it was trained with.

    Raises:
        RuntimeError: naming the work directory and the sections that differ.
    """
    dumped = osp.join(work_dir, osp.basename(config))
    if not osp.exists(dumped):
        return
    trained = _trained_from(Config.fromfile(dumped))
    current = Config.fromfile(config)
    current.merge_from_dict(cfg_options)
    current = _trained_from(current)
    differ = [key for key in TRAINED_FROM if trained[key] != current[key]]
    if differ:
        raise RuntimeError(
            f'{work_dir} holds a run trained from another version of {config} '
            f'({", ".join(differ)} changed since); move it away or choose another --work-dir '
            'to train the config as it is now')
