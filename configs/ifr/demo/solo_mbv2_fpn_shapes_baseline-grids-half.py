# Diagnostic variant of the stock SOLO demo: the grids at a half of mmdet's
# (S = 40, 36, 24, 16, 12 per level). SOLO predicts one mask channel per grid
# cell, trained only while an object's centre lies in it: over the demo's 450
# iterations (900 images) the stock S = 40 level's channels are positive 2.25
# times each (median; 47 % never), so most channels barely train
# (docs/model_zoo_demo.md, "SOLO and SOLOv2").
#   python tools/train.py configs/ifr/demo/solo_mbv2_fpn_shapes_baseline-grids-half.py
_base_ = './solo_mbv2_fpn_shapes_baseline.py'

model = dict(mask_head=dict(num_grids=[20, 18, 12, 8, 6]))
