"""Tiny clips and the tracking checks every video model of the demo passes."""
import torch

from mmdet.testing import demo_track_inputs

SHAPE = (3, 96, 96)


def clip(model, num_frames, frame_id=0, training=False):
    """A packed clip: for training 2 objects a frame with masks and frame 0
    the key frame; for inference a static scene (every frame is the first)
    whose frames start at ``frame_id``."""
    if training:
        data = demo_track_inputs(batch_size=1, num_frames=num_frames, key_frames_inds=[0],
                                 image_shapes=SHAPE, num_items=[2], num_classes=4,
                                 with_mask=True)
    else:
        data = demo_track_inputs(batch_size=1, num_frames=num_frames, image_shapes=SHAPE,
                                 num_classes=4)
        data['inputs'][0][:] = data['inputs'][0][:1]
        for t, sample in enumerate(data['data_samples'][0]):
            sample.set_metainfo(dict(frame_id=frame_id + t))
    return model.data_preprocessor(data, training)


def predict(model, test_cfg, packed, score_thr):
    """The frames' ``pred_track_instances``, with ``test_cfg.score_thr`` set."""
    model.eval()
    test_cfg.score_thr = score_thr
    with torch.no_grad():
        (out, ) = model(**packed, mode='predict')
    return [frame.pred_track_instances for frame in out]


def assert_static_scene_keeps_its_ids(model, test_cfg):
    frames = predict(model, test_cfg, clip(model, 3), score_thr=0.0)
    ids = [sorted(f.instances_id.tolist()) for f in frames]
    assert ids[0] and ids[0] == ids[1] == ids[2]
    for f in frames:
        assert f.masks.shape == (len(f), *SHAPE[1:])


def assert_no_detections_then_an_appearing_object(model, test_cfg):
    empty = predict(model, test_cfg, clip(model, 3), score_thr=1.01)
    assert all(len(f) == 0 and f.masks.shape[0] == 0 for f in empty)
    # Frame 0 shows nothing, frames 1 and 2 the same objects: they get new
    # ids at frame 1 and keep them (the tracker carries over between calls).
    (first, ) = predict(model, test_cfg, clip(model, 1), score_thr=1.01)
    assert len(first) == 0
    (second, ) = predict(model, test_cfg, clip(model, 1, frame_id=1), score_thr=0.0)
    (third, ) = predict(model, test_cfg, clip(model, 1, frame_id=2), score_thr=0.0)
    assert len(second) > 0
    assert sorted(second.instances_id.tolist()) == sorted(third.instances_id.tolist())
