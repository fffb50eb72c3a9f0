from .blendmask_head import BlendMaskHead, blend
from .ifr_blendmask_head import IFRBlendMaskHead
from .ifr_boxinst_head import IFRBoxInstBboxHead, IFRBoxInstMaskHead
from .ifr_condinst_head import IFRCondInstBboxHead, IFRCondInstMaskHead
from .ifr_fcos_head import IFRFCOSHead
from .ifr_free_anchor_retina_head import IFRFreeAnchorRetinaHead
from .ifr_meinst_head import IFRMEInstBboxHead
from .ifr_reppoints_head import IFRRepPointsHead
from .ifr_retina_head import IFRRetinaHead
from .ifr_solo_head import IFRSOLOHead
from .ifr_sipmask_head import IFRSipMaskHead
from .ifr_solov2_head import IFRSOLOV2Head
from .meinst_head import MEInstBboxHead, MEInstMaskHead
from .sipmask_head import SipMaskHead
from .small_init_retina_head import SmallInitFreeAnchorRetinaHead, SmallInitRetinaHead

__all__ = [
    'BlendMaskHead', 'IFRBlendMaskHead', 'IFRBoxInstBboxHead', 'IFRBoxInstMaskHead',
    'IFRCondInstBboxHead', 'IFRCondInstMaskHead', 'IFRFCOSHead', 'IFRFreeAnchorRetinaHead',
    'IFRMEInstBboxHead', 'IFRRepPointsHead', 'IFRRetinaHead', 'IFRSOLOHead', 'IFRSOLOV2Head',
    'IFRSipMaskHead', 'MEInstBboxHead', 'MEInstMaskHead', 'SipMaskHead',
    'SmallInitFreeAnchorRetinaHead', 'SmallInitRetinaHead', 'blend'
]
