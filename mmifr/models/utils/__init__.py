from .box_masks import centerness_of_points, paste_box_masks
from .sipmask_crop import crop_split, crop_to_boxes

__all__ = ['centerness_of_points', 'crop_split', 'crop_to_boxes', 'paste_box_masks']
