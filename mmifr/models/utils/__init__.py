from .box_masks import centerness_of_points, paste_box_masks

__all__ = ['centerness_of_points', 'paste_box_masks']
