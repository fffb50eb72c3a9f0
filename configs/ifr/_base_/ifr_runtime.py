# What every IFR config adds to an mmdet config besides the head swap:
# register mmifr's classes and the IFR hooks (./ifr_hooks.py).
_base_ = './ifr_hooks.py'
custom_imports = dict(imports=['mmifr'], allow_failed_imports=False)
