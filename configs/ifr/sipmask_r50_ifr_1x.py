# SipMask R-50 (image version) with IFR in place of its classification and
# regression towers; the basis masks read the regression refiner's output.
_base_ = ['./sipmask_r50_1x.py', './_base_/ifr_hooks.py']

model = dict(bbox_head=dict(type='IFRSipMaskHead'))
