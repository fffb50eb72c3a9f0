"""Swapping an mmdet head's stacked conv towers for IFR refiners."""
from typing import Optional, Sequence, Tuple

from mmengine.model import ModuleList, Sequential
from torch import nn

from mmdet.registry import MODELS
from mmdet.utils import OptConfigType


def _conv_of(module: nn.Module) -> nn.Module:
    """The conv inside a ConvModule, or the module itself if it is a conv."""
    return getattr(module, 'conv', module)


class IFRTowerMixin:
    """Mixin that replaces stacked-conv towers of an mmdet head by IFR.

    A head class lists the attribute paths of its towers in ``ifr_towers``
    (e.g. ``('cls_convs', 'reg_convs')``). After the mmdet head has built
    itself, each tower found there (an ``nn.ModuleList`` or ``nn.Sequential``
    of convs) is replaced by a container holding a single
    :class:`~mmifr.models.layers.IFRRefiner` with the tower's input and output
    channels. mmdet's forward iterates over the container as it did over the
    convs, so forward, losses, targets and post-processing stay mmdet's own:
    this ``__init__`` is the only thing an IFR head overrides.

    ``ifr_cfg`` may be partial (``type='IFRRefiner'`` unless given), so a
    config or ``--cfg-options`` may set one key alone (``ifr_cfg.budget=2``,
    ``ifr_cfg.test_solver.max_iter=3``, ...); nested dicts are merged by the
    refiner onto its own defaults. A head class may set
    ``default_test_solver``: the inference solve of a refiner that solves
    (``budget=None``) when ``ifr_cfg`` names none (``test_solver=dict()``:
    the training solve at test time too, the paper's protocol).

    A head whose towers IFR may or may not replace (e.g. BMask R-CNN's
    boundary convs) lists them all in ``optional_ifr_towers``; a config picks
    with ``ifr_towers``.

    Args:
        ifr_cfg (dict, optional): the refiner's config (keys left out take
            the refiner's defaults); ``in_channels`` and ``channels`` are
            taken from the tower (if given, they must match).
        ifr_towers (Sequence[str], optional): the towers to replace, from
            ``ifr_towers`` and ``optional_ifr_towers`` of the class. Default:
            the class's ``ifr_towers``.
    """
    ifr_towers: Tuple[str, ...] = ()
    optional_ifr_towers: Tuple[str, ...] = ()
    default_test_solver: Optional[dict] = None

    def __init__(self,
                 *args,
                 ifr_cfg: OptConfigType = None,
                 ifr_towers: Optional[Sequence[str]] = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ifr_cfg = self._merge_ifr_cfg(ifr_cfg)
        if ifr_towers is not None:
            allowed = tuple(type(self).ifr_towers) + tuple(self.optional_ifr_towers)
            if isinstance(ifr_towers, str) or not ifr_towers or not set(ifr_towers) <= set(allowed):
                raise ValueError(f'{type(self).__name__}: ifr_towers={ifr_towers!r}; give one or '
                                 f'more of {list(allowed)}')
            self.ifr_towers = tuple(ifr_towers)
        for path in self.ifr_towers:
            parent_path, _, name = path.rpartition('.')
            parent = self.get_submodule(parent_path) if parent_path else self
            tower = getattr(parent, name)
            refiner = MODELS.build(self._refiner_cfg(tower, path))
            # mmengine's containers, unlike torch's, pass init_weights() down.
            container = (
                Sequential(refiner) if isinstance(tower, nn.Sequential) else ModuleList([refiner]))
            setattr(parent, name, container)

    def _merge_ifr_cfg(self, ifr_cfg: OptConfigType) -> dict:
        cfg = {'type': 'IFRRefiner', **(ifr_cfg or {})}
        # A budget runs itself at inference: there is no solve to loosen.
        if (cfg.get('budget') is None and 'test_solver' not in cfg
                and self.default_test_solver is not None):
            cfg['test_solver'] = dict(self.default_test_solver)
        return cfg

    def _refiner_cfg(self, tower: nn.Module, path: str) -> dict:
        head = type(self).__name__
        if len(tower) == 0:
            raise ValueError(f'{head}: IFR replaces the stacked convs of `{path}`, but the '
                             'head was configured with none (e.g. stacked_convs=0 or '
                             'num_convs=0); keep the stock number of convs in the config')
        channels = dict(
            in_channels=_conv_of(tower[0]).in_channels,
            channels=_conv_of(tower[-1]).out_channels)
        for key, expected in channels.items():
            given = self.ifr_cfg.get(key, expected)
            if given != expected:
                raise ValueError(f'{head}: ifr_cfg.{key}={given} does not match the '
                                 f'`{path}` tower it replaces ({key}={expected})')
        return dict(self.ifr_cfg, **channels)
