"""Field positions of every architected format against IHI 0070 / the Arm ARM.

The expected positions below are a literal transcription, not derived from the field tables:
  * STE, CD, L1STD, L1CD and the SMMU_* registers: IHI 0070 5.1-5.4 and 6.3 field headings
    ("S2T0SZ, bits [165:160]"), absolute bit numbers as the spec prints them. Parametrised fields
    (S2POI<p> [4p+451:4p+448], PIIU<p> [3p+386:3p+384], PIIP<p> [3p+450:3p+448]) are expanded
    for p = 0..15. CD bits [127:126] / [191:190] are HWU0<x> / HWU1<x> (HWU062:HWU061,
    HWU162:HWU161) when IDR5.D128 == 0, which is the form the tables model (SKL0/SKL1 with D128).
  * VMSAv8-64 descriptors: Arm ARM D8.3 (smmu-facts.md 4.3).
  * Commands: IHI 0070 4.1.6 common fields, 4.4.1 (SCALE [25:20], NUM [16:12], TTL128 [71],
    TTL [73:72], TG [75:74]), 4.4.2.2, 4.7; elsewhere the figure layouts as Linux CMDQ_* uses them.
  * Events: IHI 0070 7.3 tables and Linux EVTQ_* (STAG [79:64], Stall [95], PnU [97], InD [98],
    RnW [99], S2 [103], CLASS [105:104], TTRnW [108], InputAddr [191:128], IPA [247:204],
    FetchAddr [247:195]).
Each row: (format, field, hi, lo) in absolute bits across the whole structure.
"""
import struct

import pytest
from hypothesis import given, settings, strategies as st

from smmudbg.arch import formats
from smmudbg.arch.fieldtable import FieldError, fmt
from smmudbg.arch.smmuv3 import consts, events, fields_queue, registers

SPEC_FIELDS = [
    # L1STD
    ('L1STD', 'Span', 4, 0),
    ('L1STD', 'L2Ptr', 55, 6),
    # STE
    ('STE', 'V', 0, 0),
    ('STE', 'Config', 3, 1),
    ('STE', 'S1Fmt', 5, 4),
    ('STE', 'S1ContextPtr', 55, 6),
    ('STE', 'S1CDMax', 63, 59),
    ('STE', 'S1DSS', 65, 64),
    ('STE', 'S1CIR', 67, 66),
    ('STE', 'S1COR', 69, 68),
    ('STE', 'S1CSH', 71, 70),
    ('STE', 'S2HWU59', 72, 72),
    ('STE', 'S2HWU60', 73, 73),
    ('STE', 'S2HWU61', 74, 74),
    ('STE', 'S2HWU62', 75, 75),
    ('STE', 'DRE', 76, 76),
    ('STE', 'CONT', 80, 77),
    ('STE', 'DCP', 81, 81),
    ('STE', 'PPAR', 82, 82),
    ('STE', 'MEV', 83, 83),
    ('STE', 'SW_RESERVED', 87, 84),
    ('STE', 'S1PIE', 88, 88),
    ('STE', 'S2FWB', 89, 89),
    ('STE', 'S1MPAM', 90, 90),
    ('STE', 'S1STALLD', 91, 91),
    ('STE', 'EATS', 93, 92),
    ('STE', 'STRW', 95, 94),
    ('STE', 'MemAttr', 99, 96),
    ('STE', 'MTCFG', 100, 100),
    ('STE', 'ALLOCCFG', 104, 101),
    ('STE', 'SHCFG', 109, 108),
    ('STE', 'NSCFG', 111, 110),
    ('STE', 'PRIVCFG', 113, 112),
    ('STE', 'INSTCFG', 115, 114),
    ('STE', 'S2VMID', 143, 128),
    ('STE', 'S2T0SZ', 165, 160),
    ('STE', 'S2SL0', 167, 166),
    ('STE', 'S2IR0', 169, 168),
    ('STE', 'S2OR0', 171, 170),
    ('STE', 'S2SH0', 173, 172),
    ('STE', 'S2TG', 175, 174),
    ('STE', 'S2PS', 178, 176),
    ('STE', 'S2AA64', 179, 179),
    ('STE', 'S2ENDI', 180, 180),
    ('STE', 'S2AFFD', 181, 181),
    ('STE', 'S2PTW', 182, 182),
    ('STE', 'S2HD', 183, 183),
    ('STE', 'S2HA', 184, 184),
    ('STE', 'S2S', 185, 185),
    ('STE', 'S2R', 186, 186),
    ('STE', 'S2HAFT', 187, 187),
    ('STE', 'S2PIE', 188, 188),
    ('STE', 'S2POE', 189, 189),
    ('STE', 'DPT_VMATCH', 191, 190),
    ('STE', 'S2NSW', 192, 192),
    ('STE', 'S2NSA', 193, 193),
    ('STE', 'S2SL0_2', 194, 194),
    ('STE', 'S2DS', 195, 195),
    ('STE', 'S2TTB', 247, 196),
    ('STE', 'S2SKL', 254, 253),
    ('STE', 'PARTID', 287, 272),
    ('STE', 'S_S2T0SZ', 293, 288),
    ('STE', 'S_S2SL0', 295, 294),
    ('STE', 'S_S2TG', 303, 302),
    ('STE', 'MECID', 319, 304),
    ('STE', 'PMG', 327, 320),
    ('STE', 'MPAM_NS', 328, 328),
    ('STE', 'AssuredOnly', 329, 329),
    ('STE', 'TL0', 330, 330),
    ('STE', 'TL1', 331, 331),
    ('STE', 'VMSPtr', 375, 332),
    ('STE', 'S2SW', 384, 384),
    ('STE', 'S2SA', 385, 385),
    ('STE', 'S_S2SL0_2', 386, 386),
    ('STE', 'S_S2TTB', 439, 388),
    ('STE', 'S_S2SKL', 446, 445),
    ('STE', 'S2POI0', 451, 448),
    ('STE', 'S2POI1', 455, 452),
    ('STE', 'S2POI2', 459, 456),
    ('STE', 'S2POI3', 463, 460),
    ('STE', 'S2POI4', 467, 464),
    ('STE', 'S2POI5', 471, 468),
    ('STE', 'S2POI6', 475, 472),
    ('STE', 'S2POI7', 479, 476),
    ('STE', 'S2POI8', 483, 480),
    ('STE', 'S2POI9', 487, 484),
    ('STE', 'S2POI10', 491, 488),
    ('STE', 'S2POI11', 495, 492),
    ('STE', 'S2POI12', 499, 496),
    ('STE', 'S2POI13', 503, 500),
    ('STE', 'S2POI14', 507, 504),
    ('STE', 'S2POI15', 511, 508),
    # L1CD
    ('L1CD', 'V', 0, 0),
    ('L1CD', 'L2Ptr', 55, 12),
    # CD
    ('CD', 'T0SZ', 5, 0),
    ('CD', 'TG0', 7, 6),
    ('CD', 'IR0', 9, 8),
    ('CD', 'OR0', 11, 10),
    ('CD', 'SH0', 13, 12),
    ('CD', 'EPD0', 14, 14),
    ('CD', 'ENDI', 15, 15),
    ('CD', 'T1SZ', 21, 16),
    ('CD', 'TG1', 23, 22),
    ('CD', 'IR1', 25, 24),
    ('CD', 'OR1', 27, 26),
    ('CD', 'SH1', 29, 28),
    ('CD', 'EPD1', 30, 30),
    ('CD', 'IPS', 34, 32),
    ('CD', 'V', 31, 31),
    ('CD', 'AFFD', 35, 35),
    ('CD', 'WXN', 36, 36),
    ('CD', 'UWXN', 37, 37),
    ('CD', 'TBI0', 38, 38),
    ('CD', 'TBI1', 39, 39),
    ('CD', 'PAN', 40, 40),
    ('CD', 'AA64', 41, 41),
    ('CD', 'HD', 42, 42),
    ('CD', 'HA', 43, 43),
    ('CD', 'ASET', 47, 47),
    ('CD', 'S', 44, 44),
    ('CD', 'R', 45, 45),
    ('CD', 'A', 46, 46),
    ('CD', 'ASID', 63, 48),
    ('CD', 'NSCFG0', 64, 64),
    ('CD', 'HAD0', 65, 65),
    ('CD', 'E0PD0', 66, 66),
    ('CD', 'HAFT', 67, 67),
    ('CD', 'TTB0', 119, 68),
    ('CD', 'PnCH', 122, 122),
    ('CD', 'EPAN', 123, 123),
    ('CD', 'HWU059', 124, 124),
    ('CD', 'HWU060', 125, 125),
    ('CD', 'HWU061', 126, 126),
    ('CD', 'HWU062', 127, 127),
    ('CD', 'NSCFG1', 128, 128),
    ('CD', 'HAD1', 129, 129),
    ('CD', 'E0PD1', 130, 130),
    ('CD', 'AIE', 131, 131),
    ('CD', 'TTB1', 183, 132),
    ('CD', 'DS', 186, 186),
    ('CD', 'PIE', 187, 187),
    ('CD', 'HWU159', 188, 188),
    ('CD', 'HWU160', 189, 189),
    ('CD', 'HWU161', 190, 190),
    ('CD', 'HWU162', 191, 191),
    ('CD', 'MAIR0', 223, 192),
    ('CD', 'MAIR1', 255, 224),
    ('CD', 'AMAIR0', 287, 256),
    ('CD', 'AMAIR1', 319, 288),
    ('CD', 'PARTID', 367, 352),
    ('CD', 'PMG', 375, 368),
    ('CD', 'PIIU0', 386, 384),
    ('CD', 'PIIU1', 389, 387),
    ('CD', 'PIIU2', 392, 390),
    ('CD', 'PIIU3', 395, 393),
    ('CD', 'PIIU4', 398, 396),
    ('CD', 'PIIU5', 401, 399),
    ('CD', 'PIIU6', 404, 402),
    ('CD', 'PIIU7', 407, 405),
    ('CD', 'PIIU8', 410, 408),
    ('CD', 'PIIU9', 413, 411),
    ('CD', 'PIIU10', 416, 414),
    ('CD', 'PIIU11', 419, 417),
    ('CD', 'PIIU12', 422, 420),
    ('CD', 'PIIU13', 425, 423),
    ('CD', 'PIIU14', 428, 426),
    ('CD', 'PIIU15', 431, 429),
    ('CD', 'PIIP0', 450, 448),
    ('CD', 'PIIP1', 453, 451),
    ('CD', 'PIIP2', 456, 454),
    ('CD', 'PIIP3', 459, 457),
    ('CD', 'PIIP4', 462, 460),
    ('CD', 'PIIP5', 465, 463),
    ('CD', 'PIIP6', 468, 466),
    ('CD', 'PIIP7', 471, 469),
    ('CD', 'PIIP8', 474, 472),
    ('CD', 'PIIP9', 477, 475),
    ('CD', 'PIIP10', 480, 478),
    ('CD', 'PIIP11', 483, 481),
    ('CD', 'PIIP12', 486, 484),
    ('CD', 'PIIP13', 489, 487),
    ('CD', 'PIIP14', 492, 490),
    ('CD', 'PIIP15', 495, 493),
    # SMMU_IDR0
    ('SMMU_IDR0', 'RME_IMPL', 30, 30),
    ('SMMU_IDR0', 'ST_LEVEL', 28, 27),
    ('SMMU_IDR0', 'TERM_MODEL', 26, 26),
    ('SMMU_IDR0', 'STALL_MODEL', 25, 24),
    ('SMMU_IDR0', 'ATSRECERR', 23, 23),
    ('SMMU_IDR0', 'TTENDIAN', 22, 21),
    ('SMMU_IDR0', 'VATOS', 20, 20),
    ('SMMU_IDR0', 'CD2L', 19, 19),
    ('SMMU_IDR0', 'VMID16', 18, 18),
    ('SMMU_IDR0', 'VMW', 17, 17),
    ('SMMU_IDR0', 'PRI', 16, 16),
    ('SMMU_IDR0', 'ATOS', 15, 15),
    ('SMMU_IDR0', 'SEV', 14, 14),
    ('SMMU_IDR0', 'MSI', 13, 13),
    ('SMMU_IDR0', 'ASID16', 12, 12),
    ('SMMU_IDR0', 'NS1ATS', 11, 11),
    ('SMMU_IDR0', 'ATS', 10, 10),
    ('SMMU_IDR0', 'Hyp', 9, 9),
    ('SMMU_IDR0', 'DORMHINT', 8, 8),
    ('SMMU_IDR0', 'HTTU', 7, 6),
    ('SMMU_IDR0', 'BTM', 5, 5),
    ('SMMU_IDR0', 'COHACC', 4, 4),
    ('SMMU_IDR0', 'TTF', 3, 2),
    ('SMMU_IDR0', 'S1P', 1, 1),
    ('SMMU_IDR0', 'S2P', 0, 0),
    # SMMU_IDR1
    ('SMMU_IDR1', 'ECMDQ', 31, 31),
    ('SMMU_IDR1', 'TABLES_PRESET', 30, 30),
    ('SMMU_IDR1', 'QUEUES_PRESET', 29, 29),
    ('SMMU_IDR1', 'REL', 28, 28),
    ('SMMU_IDR1', 'ATTR_TYPES_OVR', 27, 27),
    ('SMMU_IDR1', 'ATTR_PERMS_OVR', 26, 26),
    ('SMMU_IDR1', 'CMDQS', 25, 21),
    ('SMMU_IDR1', 'EVENTQS', 20, 16),
    ('SMMU_IDR1', 'PRIQS', 15, 11),
    ('SMMU_IDR1', 'SSIDSIZE', 10, 6),
    ('SMMU_IDR1', 'SIDSIZE', 5, 0),
    # SMMU_IDR2
    ('SMMU_IDR2', 'BA_VATOS', 9, 0),
    # SMMU_IDR3
    ('SMMU_IDR3', 'AIE', 23, 23),
    ('SMMU_IDR3', 'MTEPERM', 22, 22),
    ('SMMU_IDR3', 'THE', 21, 21),
    ('SMMU_IDR3', 'S2PO', 20, 20),
    ('SMMU_IDR3', 'S2PI', 19, 19),
    ('SMMU_IDR3', 'S1PI', 18, 18),
    ('SMMU_IDR3', 'EPAN', 17, 17),
    ('SMMU_IDR3', 'PASIDTT', 16, 16),
    ('SMMU_IDR3', 'DPT', 15, 15),
    ('SMMU_IDR3', 'PTWNNC', 14, 14),
    ('SMMU_IDR3', 'E0PD', 13, 13),
    ('SMMU_IDR3', 'BBML', 12, 11),
    ('SMMU_IDR3', 'RIL', 10, 10),
    ('SMMU_IDR3', 'STT', 9, 9),
    ('SMMU_IDR3', 'FWB', 8, 8),
    ('SMMU_IDR3', 'MPAM', 7, 7),
    ('SMMU_IDR3', 'PPS', 5, 5),
    ('SMMU_IDR3', 'XNX', 4, 4),
    ('SMMU_IDR3', 'PBHA', 3, 3),
    ('SMMU_IDR3', 'HAD', 2, 2),
    # SMMU_IDR5
    ('SMMU_IDR5', 'STALL_MAX', 31, 16),
    ('SMMU_IDR5', 'VAX', 11, 10),
    ('SMMU_IDR5', 'D128', 8, 8),
    ('SMMU_IDR5', 'DS', 7, 7),
    ('SMMU_IDR5', 'GRAN64K', 6, 6),
    ('SMMU_IDR5', 'GRAN16K', 5, 5),
    ('SMMU_IDR5', 'GRAN4K', 4, 4),
    ('SMMU_IDR5', 'OAS', 2, 0),
    # SMMU_IIDR
    ('SMMU_IIDR', 'ProductID', 31, 20),
    ('SMMU_IIDR', 'Variant', 19, 16),
    ('SMMU_IIDR', 'Revision', 15, 12),
    ('SMMU_IIDR', 'Implementer', 11, 0),
    # SMMU_AIDR
    ('SMMU_AIDR', 'ArchMajorRev', 7, 4),
    ('SMMU_AIDR', 'ArchMinorRev', 3, 0),
    # SMMU_CR0
    ('SMMU_CR0', 'DPT_WALK_EN', 10, 10),
    ('SMMU_CR0', 'VMW', 8, 6),
    ('SMMU_CR0', 'ATSCHK', 4, 4),
    ('SMMU_CR0', 'CMDQEN', 3, 3),
    ('SMMU_CR0', 'EVENTQEN', 2, 2),
    ('SMMU_CR0', 'PRIQEN', 1, 1),
    ('SMMU_CR0', 'SMMUEN', 0, 0),
    # SMMU_CR0ACK
    ('SMMU_CR0ACK', 'DPT_WALK_EN', 10, 10),
    ('SMMU_CR0ACK', 'VMW', 8, 6),
    ('SMMU_CR0ACK', 'ATSCHK', 4, 4),
    ('SMMU_CR0ACK', 'CMDQEN', 3, 3),
    ('SMMU_CR0ACK', 'EVENTQEN', 2, 2),
    ('SMMU_CR0ACK', 'PRIQEN', 1, 1),
    ('SMMU_CR0ACK', 'SMMUEN', 0, 0),
    # SMMU_CR1
    ('SMMU_CR1', 'TABLE_SH', 11, 10),
    ('SMMU_CR1', 'TABLE_OC', 9, 8),
    ('SMMU_CR1', 'TABLE_IC', 7, 6),
    ('SMMU_CR1', 'QUEUE_SH', 5, 4),
    ('SMMU_CR1', 'QUEUE_OC', 3, 2),
    ('SMMU_CR1', 'QUEUE_IC', 1, 0),
    # SMMU_CR2
    ('SMMU_CR2', 'REC_CFG_ATS', 3, 3),
    ('SMMU_CR2', 'PTM', 2, 2),
    ('SMMU_CR2', 'RECINVSID', 1, 1),
    ('SMMU_CR2', 'E2H', 0, 0),
    # SMMU_STATUSR
    ('SMMU_STATUSR', 'DORMANT', 0, 0),
    # SMMU_GBPA
    ('SMMU_GBPA', 'Update', 31, 31),
    ('SMMU_GBPA', 'ABORT', 20, 20),
    ('SMMU_GBPA', 'INSTCFG', 19, 18),
    ('SMMU_GBPA', 'PRIVCFG', 17, 16),
    ('SMMU_GBPA', 'SHCFG', 13, 12),
    ('SMMU_GBPA', 'ALLOCCFG', 11, 8),
    ('SMMU_GBPA', 'MTCFG', 4, 4),
    ('SMMU_GBPA', 'MemAttr', 3, 0),
    # SMMU_IRQ_CTRL
    ('SMMU_IRQ_CTRL', 'EVENTQ_IRQEN', 2, 2),
    ('SMMU_IRQ_CTRL', 'PRIQ_IRQEN', 1, 1),
    ('SMMU_IRQ_CTRL', 'GERROR_IRQEN', 0, 0),
    # SMMU_IRQ_CTRLACK
    ('SMMU_IRQ_CTRLACK', 'EVENTQ_IRQEN', 2, 2),
    ('SMMU_IRQ_CTRLACK', 'PRIQ_IRQEN', 1, 1),
    ('SMMU_IRQ_CTRLACK', 'GERROR_IRQEN', 0, 0),
    # SMMU_GERROR
    ('SMMU_GERROR', 'DPT_ERR', 10, 10),
    ('SMMU_GERROR', 'CMDQP_ERR', 9, 9),
    ('SMMU_GERROR', 'SFM_ERR', 8, 8),
    ('SMMU_GERROR', 'MSI_GERROR_ABT_ERR', 7, 7),
    ('SMMU_GERROR', 'MSI_PRIQ_ABT_ERR', 6, 6),
    ('SMMU_GERROR', 'MSI_EVENTQ_ABT_ERR', 5, 5),
    ('SMMU_GERROR', 'MSI_CMDQ_ABT_ERR', 4, 4),
    ('SMMU_GERROR', 'PRIQ_ABT_ERR', 3, 3),
    ('SMMU_GERROR', 'EVENTQ_ABT_ERR', 2, 2),
    ('SMMU_GERROR', 'CMDQ_ERR', 0, 0),
    # SMMU_GERRORN
    ('SMMU_GERRORN', 'DPT_ERR', 10, 10),
    ('SMMU_GERRORN', 'CMDQP_ERR', 9, 9),
    ('SMMU_GERRORN', 'SFM_ERR', 8, 8),
    ('SMMU_GERRORN', 'MSI_GERROR_ABT_ERR', 7, 7),
    ('SMMU_GERRORN', 'MSI_PRIQ_ABT_ERR', 6, 6),
    ('SMMU_GERRORN', 'MSI_EVENTQ_ABT_ERR', 5, 5),
    ('SMMU_GERRORN', 'MSI_CMDQ_ABT_ERR', 4, 4),
    ('SMMU_GERRORN', 'PRIQ_ABT_ERR', 3, 3),
    ('SMMU_GERRORN', 'EVENTQ_ABT_ERR', 2, 2),
    ('SMMU_GERRORN', 'CMDQ_ERR', 0, 0),
    # SMMU_GERROR_IRQ_CFG0
    ('SMMU_GERROR_IRQ_CFG0', 'ADDR', 55, 2),
    # SMMU_GERROR_IRQ_CFG1
    ('SMMU_GERROR_IRQ_CFG1', 'DATA', 31, 0),
    # SMMU_GERROR_IRQ_CFG2
    ('SMMU_GERROR_IRQ_CFG2', 'SH', 5, 4),
    ('SMMU_GERROR_IRQ_CFG2', 'MemAttr', 3, 0),
    # SMMU_STRTAB_BASE
    ('SMMU_STRTAB_BASE', 'RA', 62, 62),
    ('SMMU_STRTAB_BASE', 'ADDR', 55, 6),
    # SMMU_STRTAB_BASE_CFG
    ('SMMU_STRTAB_BASE_CFG', 'FMT', 17, 16),
    ('SMMU_STRTAB_BASE_CFG', 'SPLIT', 10, 6),
    ('SMMU_STRTAB_BASE_CFG', 'LOG2SIZE', 5, 0),
    # SMMU_CMDQ_BASE
    ('SMMU_CMDQ_BASE', 'RA', 62, 62),
    ('SMMU_CMDQ_BASE', 'ADDR', 55, 5),
    ('SMMU_CMDQ_BASE', 'LOG2SIZE', 4, 0),
    # SMMU_CMDQ_PROD
    ('SMMU_CMDQ_PROD', 'WR', 19, 0),
    # SMMU_CMDQ_CONS
    ('SMMU_CMDQ_CONS', 'ERR', 30, 24),
    ('SMMU_CMDQ_CONS', 'RD', 19, 0),
    # SMMU_EVENTQ_BASE
    ('SMMU_EVENTQ_BASE', 'WA', 62, 62),
    ('SMMU_EVENTQ_BASE', 'ADDR', 55, 5),
    ('SMMU_EVENTQ_BASE', 'LOG2SIZE', 4, 0),
    # SMMU_EVENTQ_PROD
    ('SMMU_EVENTQ_PROD', 'OVFLG', 31, 31),
    ('SMMU_EVENTQ_PROD', 'WR', 19, 0),
    # SMMU_EVENTQ_CONS
    ('SMMU_EVENTQ_CONS', 'OVACKFLG', 31, 31),
    ('SMMU_EVENTQ_CONS', 'RD', 19, 0),
    # SMMU_EVENTQ_IRQ_CFG0
    ('SMMU_EVENTQ_IRQ_CFG0', 'ADDR', 55, 2),
    # SMMU_EVENTQ_IRQ_CFG1
    ('SMMU_EVENTQ_IRQ_CFG1', 'DATA', 31, 0),
    # SMMU_EVENTQ_IRQ_CFG2
    ('SMMU_EVENTQ_IRQ_CFG2', 'SH', 5, 4),
    ('SMMU_EVENTQ_IRQ_CFG2', 'MemAttr', 3, 0),
    # SMMU_PRIQ_BASE
    ('SMMU_PRIQ_BASE', 'WA', 62, 62),
    ('SMMU_PRIQ_BASE', 'ADDR', 55, 5),
    ('SMMU_PRIQ_BASE', 'LOG2SIZE', 4, 0),
    # SMMU_PRIQ_PROD
    ('SMMU_PRIQ_PROD', 'OVFLG', 31, 31),
    ('SMMU_PRIQ_PROD', 'WR', 19, 0),
    # SMMU_PRIQ_CONS
    ('SMMU_PRIQ_CONS', 'OVACKFLG', 31, 31),
    ('SMMU_PRIQ_CONS', 'RD', 19, 0),
    # SMMU_PRIQ_IRQ_CFG0
    ('SMMU_PRIQ_IRQ_CFG0', 'ADDR', 55, 2),
    # SMMU_PRIQ_IRQ_CFG1
    ('SMMU_PRIQ_IRQ_CFG1', 'DATA', 31, 0),
    # SMMU_PRIQ_IRQ_CFG2
    ('SMMU_PRIQ_IRQ_CFG2', 'LO', 31, 31),
    ('SMMU_PRIQ_IRQ_CFG2', 'SH', 5, 4),
    ('SMMU_PRIQ_IRQ_CFG2', 'MemAttr', 3, 0),
    ('SMMU_IDR4', 'IMPDEF', 31, 0),
    # Arm ARM D8.3 VMSAv8-64 stage 1 table descriptor
    ('S1_TABLE', 'Valid', 0, 0),
    ('S1_TABLE', 'Type', 1, 1),
    ('S1_TABLE', 'NLTA', 47, 12),
    ('S1_TABLE', 'PXNTable', 59, 59),
    ('S1_TABLE', 'UXNTable', 60, 60),
    ('S1_TABLE', 'APTable', 62, 61),
    ('S1_TABLE', 'NSTable', 63, 63),
    # stage 1 block / page
    ('S1_BLOCK', 'Valid', 0, 0),
    ('S1_BLOCK', 'Type', 1, 1),
    ('S1_BLOCK', 'AttrIndx', 4, 2),
    ('S1_BLOCK', 'NS', 5, 5),
    ('S1_BLOCK', 'AP', 7, 6),
    ('S1_BLOCK', 'SH', 9, 8),
    ('S1_BLOCK', 'AF', 10, 10),
    ('S1_BLOCK', 'nG', 11, 11),
    ('S1_BLOCK', 'OA', 47, 12),
    ('S1_BLOCK', 'DBM', 51, 51),
    ('S1_BLOCK', 'Contiguous', 52, 52),
    ('S1_BLOCK', 'PXN', 53, 53),
    ('S1_BLOCK', 'UXN', 54, 54),
    ('S1_BLOCK', 'SW', 58, 55),
    ('S1_BLOCK', 'PBHA', 62, 59),
    # stage 2 table
    ('S2_TABLE', 'Valid', 0, 0),
    ('S2_TABLE', 'Type', 1, 1),
    ('S2_TABLE', 'NLTA', 47, 12),
    # stage 2 block / page
    ('S2_BLOCK', 'Valid', 0, 0),
    ('S2_BLOCK', 'Type', 1, 1),
    ('S2_BLOCK', 'MemAttr', 5, 2),
    ('S2_BLOCK', 'S2AP', 7, 6),
    ('S2_BLOCK', 'SH', 9, 8),
    ('S2_BLOCK', 'AF', 10, 10),
    ('S2_BLOCK', 'OA', 47, 12),
    ('S2_BLOCK', 'DBM', 51, 51),
    ('S2_BLOCK', 'Contiguous', 52, 52),
    ('S2_BLOCK', 'XN', 54, 53),
    ('S2_BLOCK', 'SW', 58, 55),
    # IHI 0070 4.2.1 CMD_PREFETCH_CONFIG
    ('CMD_PREFETCH_CONFIG', 'Opcode', 7, 0),
    ('CMD_PREFETCH_CONFIG', 'SSec', 10, 10),
    ('CMD_PREFETCH_CONFIG', 'SSV', 11, 11),
    ('CMD_PREFETCH_CONFIG', 'SubstreamID', 31, 12),
    ('CMD_PREFETCH_CONFIG', 'StreamID', 63, 32),
    # 4.2.2 CMD_PREFETCH_ADDR
    ('CMD_PREFETCH_ADDR', 'Opcode', 7, 0),
    ('CMD_PREFETCH_ADDR', 'SSec', 10, 10),
    ('CMD_PREFETCH_ADDR', 'SSV', 11, 11),
    ('CMD_PREFETCH_ADDR', 'SubstreamID', 31, 12),
    ('CMD_PREFETCH_ADDR', 'StreamID', 63, 32),
    ('CMD_PREFETCH_ADDR', 'Size', 68, 64),
    ('CMD_PREFETCH_ADDR', 'Stride', 73, 69),
    ('CMD_PREFETCH_ADDR', 'Address', 127, 76),
    # 4.3.1 CMD_CFGI_STE
    ('CMD_CFGI_STE', 'Opcode', 7, 0),
    ('CMD_CFGI_STE', 'SSec', 10, 10),
    ('CMD_CFGI_STE', 'StreamID', 63, 32),
    ('CMD_CFGI_STE', 'Leaf', 64, 64),
    # 4.3.2 CMD_CFGI_STE_RANGE
    ('CMD_CFGI_STE_RANGE', 'Opcode', 7, 0),
    ('CMD_CFGI_STE_RANGE', 'SSec', 10, 10),
    ('CMD_CFGI_STE_RANGE', 'StreamID', 63, 32),
    ('CMD_CFGI_STE_RANGE', 'Range', 68, 64),
    # 4.3.6 CMD_CFGI_ALL
    ('CMD_CFGI_ALL', 'Opcode', 7, 0),
    ('CMD_CFGI_ALL', 'SSec', 10, 10),
    ('CMD_CFGI_ALL', 'StreamID', 63, 32),
    ('CMD_CFGI_ALL', 'Range', 68, 64),
    # 4.3.3 CMD_CFGI_CD
    ('CMD_CFGI_CD', 'Opcode', 7, 0),
    ('CMD_CFGI_CD', 'SSec', 10, 10),
    ('CMD_CFGI_CD', 'SubstreamID', 31, 12),
    ('CMD_CFGI_CD', 'StreamID', 63, 32),
    ('CMD_CFGI_CD', 'Leaf', 64, 64),
    # 4.3.4 CMD_CFGI_CD_ALL
    ('CMD_CFGI_CD_ALL', 'Opcode', 7, 0),
    ('CMD_CFGI_CD_ALL', 'SSec', 10, 10),
    ('CMD_CFGI_CD_ALL', 'StreamID', 63, 32),
    # 4.4.2 stage 1 TLBI
    ('CMD_TLBI_NH_ALL', 'Opcode', 7, 0),
    ('CMD_TLBI_NH_ALL', 'VMID', 47, 32),
    ('CMD_TLBI_NH_ASID', 'Opcode', 7, 0),
    ('CMD_TLBI_NH_ASID', 'VMID', 47, 32),
    ('CMD_TLBI_NH_ASID', 'ASID', 63, 48),
    ('CMD_TLBI_NH_VA', 'Opcode', 7, 0),
    ('CMD_TLBI_NH_VA', 'NUM', 16, 12),
    ('CMD_TLBI_NH_VA', 'SCALE', 25, 20),
    ('CMD_TLBI_NH_VA', 'VMID', 47, 32),
    ('CMD_TLBI_NH_VA', 'ASID', 63, 48),
    ('CMD_TLBI_NH_VA', 'Leaf', 64, 64),
    ('CMD_TLBI_NH_VA', 'TTL128', 71, 71),
    ('CMD_TLBI_NH_VA', 'TTL', 73, 72),
    ('CMD_TLBI_NH_VA', 'TG', 75, 74),
    ('CMD_TLBI_NH_VA', 'Address', 127, 76),
    ('CMD_TLBI_NH_VAA', 'Opcode', 7, 0),
    ('CMD_TLBI_NH_VAA', 'NUM', 16, 12),
    ('CMD_TLBI_NH_VAA', 'SCALE', 25, 20),
    ('CMD_TLBI_NH_VAA', 'VMID', 47, 32),
    ('CMD_TLBI_NH_VAA', 'Leaf', 64, 64),
    ('CMD_TLBI_NH_VAA', 'TTL128', 71, 71),
    ('CMD_TLBI_NH_VAA', 'TTL', 73, 72),
    ('CMD_TLBI_NH_VAA', 'TG', 75, 74),
    ('CMD_TLBI_NH_VAA', 'Address', 127, 76),
    ('CMD_TLBI_EL2_ALL', 'Opcode', 7, 0),
    ('CMD_TLBI_EL2_ASID', 'Opcode', 7, 0),
    ('CMD_TLBI_EL2_ASID', 'ASID', 63, 48),
    ('CMD_TLBI_EL2_VA', 'Opcode', 7, 0),
    ('CMD_TLBI_EL2_VA', 'NUM', 16, 12),
    ('CMD_TLBI_EL2_VA', 'SCALE', 25, 20),
    ('CMD_TLBI_EL2_VA', 'ASID', 63, 48),
    ('CMD_TLBI_EL2_VA', 'Leaf', 64, 64),
    ('CMD_TLBI_EL2_VA', 'TTL128', 71, 71),
    ('CMD_TLBI_EL2_VA', 'TTL', 73, 72),
    ('CMD_TLBI_EL2_VA', 'TG', 75, 74),
    ('CMD_TLBI_EL2_VA', 'Address', 127, 76),
    ('CMD_TLBI_EL2_VAA', 'Opcode', 7, 0),
    ('CMD_TLBI_EL2_VAA', 'NUM', 16, 12),
    ('CMD_TLBI_EL2_VAA', 'SCALE', 25, 20),
    ('CMD_TLBI_EL2_VAA', 'Leaf', 64, 64),
    ('CMD_TLBI_EL2_VAA', 'TTL128', 71, 71),
    ('CMD_TLBI_EL2_VAA', 'TTL', 73, 72),
    ('CMD_TLBI_EL2_VAA', 'TG', 75, 74),
    ('CMD_TLBI_EL2_VAA', 'Address', 127, 76),
    # 4.4.3 stage 2 TLBI
    ('CMD_TLBI_S12_VMALL', 'Opcode', 7, 0),
    ('CMD_TLBI_S12_VMALL', 'VMID', 47, 32),
    ('CMD_TLBI_S2_IPA', 'Opcode', 7, 0),
    ('CMD_TLBI_S2_IPA', 'NUM', 16, 12),
    ('CMD_TLBI_S2_IPA', 'SCALE', 25, 20),
    ('CMD_TLBI_S2_IPA', 'VMID', 47, 32),
    ('CMD_TLBI_S2_IPA', 'Leaf', 64, 64),
    ('CMD_TLBI_S2_IPA', 'TTL128', 71, 71),
    ('CMD_TLBI_S2_IPA', 'TTL', 73, 72),
    ('CMD_TLBI_S2_IPA', 'TG', 75, 74),
    ('CMD_TLBI_S2_IPA', 'Address', 119, 76),
    # 4.4.4.1
    ('CMD_TLBI_NSNH_ALL', 'Opcode', 7, 0),
    # 4.5.1 CMD_ATC_INV
    ('CMD_ATC_INV', 'Opcode', 7, 0),
    ('CMD_ATC_INV', 'Global', 9, 9),
    ('CMD_ATC_INV', 'SSV', 11, 11),
    ('CMD_ATC_INV', 'SubstreamID', 31, 12),
    ('CMD_ATC_INV', 'StreamID', 63, 32),
    ('CMD_ATC_INV', 'Size', 69, 64),
    ('CMD_ATC_INV', 'Address', 127, 76),
    # 4.5.2 CMD_PRI_RESP
    ('CMD_PRI_RESP', 'Opcode', 7, 0),
    ('CMD_PRI_RESP', 'SSV', 11, 11),
    ('CMD_PRI_RESP', 'SubstreamID', 31, 12),
    ('CMD_PRI_RESP', 'StreamID', 63, 32),
    ('CMD_PRI_RESP', 'PRGIndex', 72, 64),
    ('CMD_PRI_RESP', 'Resp', 77, 76),
    # 4.7.1 CMD_RESUME
    ('CMD_RESUME', 'Opcode', 7, 0),
    ('CMD_RESUME', 'SSec', 10, 10),
    ('CMD_RESUME', 'Ac', 12, 12),
    ('CMD_RESUME', 'Ab', 13, 13),
    ('CMD_RESUME', 'StreamID', 63, 32),
    ('CMD_RESUME', 'STAG', 79, 64),
    # 4.7.2 CMD_STALL_TERM
    ('CMD_STALL_TERM', 'Opcode', 7, 0),
    ('CMD_STALL_TERM', 'SSec', 10, 10),
    ('CMD_STALL_TERM', 'StreamID', 63, 32),
    # 4.7.3 CMD_SYNC
    ('CMD_SYNC', 'Opcode', 7, 0),
    ('CMD_SYNC', 'CS', 13, 12),
    ('CMD_SYNC', 'MSH', 23, 22),
    ('CMD_SYNC', 'MSIAttr', 27, 24),
    ('CMD_SYNC', 'MSIData', 63, 32),
    ('CMD_SYNC', 'MSIAddress', 119, 66),
    # IHI 0070 7.3.2 F_UUT
    ('EVT_F_UUT', 'Type', 7, 0),
    ('EVT_F_UUT', 'SSV', 11, 11),
    ('EVT_F_UUT', 'SubstreamID', 31, 12),
    ('EVT_F_UUT', 'StreamID', 63, 32),
    ('EVT_F_UUT', 'Reason', 79, 64),
    ('EVT_F_UUT', 'PnU', 97, 97),
    ('EVT_F_UUT', 'InD', 98, 98),
    ('EVT_F_UUT', 'RnW', 99, 99),
    ('EVT_F_UUT', 'InputAddr', 191, 128),
    # 7.3.3 C_BAD_STREAMID
    ('EVT_C_BAD_STREAMID', 'Type', 7, 0),
    ('EVT_C_BAD_STREAMID', 'SSV', 11, 11),
    ('EVT_C_BAD_STREAMID', 'SubstreamID', 31, 12),
    ('EVT_C_BAD_STREAMID', 'StreamID', 63, 32),
    # 7.3.4 F_STE_FETCH
    ('EVT_F_STE_FETCH', 'Type', 7, 0),
    ('EVT_F_STE_FETCH', 'SSV', 11, 11),
    ('EVT_F_STE_FETCH', 'SubstreamID', 31, 12),
    ('EVT_F_STE_FETCH', 'StreamID', 63, 32),
    ('EVT_F_STE_FETCH', 'Reason', 79, 64),
    ('EVT_F_STE_FETCH', 'GPCF', 80, 80),
    ('EVT_F_STE_FETCH', 'FetchAddr', 247, 195),
    # 7.3.5 C_BAD_STE
    ('EVT_C_BAD_STE', 'Type', 7, 0),
    ('EVT_C_BAD_STE', 'SSV', 11, 11),
    ('EVT_C_BAD_STE', 'SubstreamID', 31, 12),
    ('EVT_C_BAD_STE', 'StreamID', 63, 32),
    # 7.3.6 F_BAD_ATS_TREQ
    ('EVT_F_BAD_ATS_TREQ', 'Type', 7, 0),
    ('EVT_F_BAD_ATS_TREQ', 'SSV', 11, 11),
    ('EVT_F_BAD_ATS_TREQ', 'SubstreamID', 31, 12),
    ('EVT_F_BAD_ATS_TREQ', 'StreamID', 63, 32),
    ('EVT_F_BAD_ATS_TREQ', 'Span', 67, 64),
    ('EVT_F_BAD_ATS_TREQ', 'P', 92, 92),
    ('EVT_F_BAD_ATS_TREQ', 'X', 93, 93),
    ('EVT_F_BAD_ATS_TREQ', 'W', 94, 94),
    ('EVT_F_BAD_ATS_TREQ', 'R', 95, 95),
    ('EVT_F_BAD_ATS_TREQ', 'InputAddr', 191, 140),
    # 7.3.7 F_STREAM_DISABLED
    ('EVT_F_STREAM_DISABLED', 'Type', 7, 0),
    ('EVT_F_STREAM_DISABLED', 'StreamID', 63, 32),
    # 7.3.8 F_TRANSL_FORBIDDEN
    ('EVT_F_TRANSL_FORBIDDEN', 'Type', 7, 0),
    ('EVT_F_TRANSL_FORBIDDEN', 'StreamID', 63, 32),
    ('EVT_F_TRANSL_FORBIDDEN', 'RnW', 99, 99),
    ('EVT_F_TRANSL_FORBIDDEN', 'InputAddr', 191, 128),
    # 7.3.9 C_BAD_SUBSTREAMID
    ('EVT_C_BAD_SUBSTREAMID', 'Type', 7, 0),
    ('EVT_C_BAD_SUBSTREAMID', 'SubstreamID', 31, 12),
    ('EVT_C_BAD_SUBSTREAMID', 'StreamID', 63, 32),
    # 7.3.10 F_CD_FETCH
    ('EVT_F_CD_FETCH', 'Type', 7, 0),
    ('EVT_F_CD_FETCH', 'SSV', 11, 11),
    ('EVT_F_CD_FETCH', 'SubstreamID', 31, 12),
    ('EVT_F_CD_FETCH', 'StreamID', 63, 32),
    ('EVT_F_CD_FETCH', 'Reason', 79, 64),
    ('EVT_F_CD_FETCH', 'GPCF', 80, 80),
    ('EVT_F_CD_FETCH', 'FetchAddr', 247, 195),
    # 7.3.11 C_BAD_CD
    ('EVT_C_BAD_CD', 'Type', 7, 0),
    ('EVT_C_BAD_CD', 'SSV', 11, 11),
    ('EVT_C_BAD_CD', 'SubstreamID', 31, 12),
    ('EVT_C_BAD_CD', 'StreamID', 63, 32),
    # 7.3.12 F_WALK_EABT
    ('EVT_F_WALK_EABT', 'Type', 7, 0),
    ('EVT_F_WALK_EABT', 'SSV', 11, 11),
    ('EVT_F_WALK_EABT', 'SubstreamID', 31, 12),
    ('EVT_F_WALK_EABT', 'StreamID', 63, 32),
    ('EVT_F_WALK_EABT', 'PnU', 97, 97),
    ('EVT_F_WALK_EABT', 'InD', 98, 98),
    ('EVT_F_WALK_EABT', 'RnW', 99, 99),
    ('EVT_F_WALK_EABT', 'S2', 103, 103),
    ('EVT_F_WALK_EABT', 'CLASS', 105, 104),
    ('EVT_F_WALK_EABT', 'InputAddr', 191, 128),
    ('EVT_F_WALK_EABT', 'FetchAddr', 247, 195),
    # 7.3.13 F_TRANSLATION
    ('EVT_F_TRANSLATION', 'Type', 7, 0),
    ('EVT_F_TRANSLATION', 'SSV', 11, 11),
    ('EVT_F_TRANSLATION', 'SubstreamID', 31, 12),
    ('EVT_F_TRANSLATION', 'StreamID', 63, 32),
    ('EVT_F_TRANSLATION', 'STAG', 79, 64),
    ('EVT_F_TRANSLATION', 'Stall', 95, 95),
    ('EVT_F_TRANSLATION', 'PnU', 97, 97),
    ('EVT_F_TRANSLATION', 'InD', 98, 98),
    ('EVT_F_TRANSLATION', 'RnW', 99, 99),
    ('EVT_F_TRANSLATION', 'NSIPA', 102, 102),
    ('EVT_F_TRANSLATION', 'S2', 103, 103),
    ('EVT_F_TRANSLATION', 'CLASS', 105, 104),
    ('EVT_F_TRANSLATION', 'InputAddr', 191, 128),
    ('EVT_F_TRANSLATION', 'IPA', 247, 204),
    # 7.3.14 F_ADDR_SIZE
    ('EVT_F_ADDR_SIZE', 'Type', 7, 0),
    ('EVT_F_ADDR_SIZE', 'SSV', 11, 11),
    ('EVT_F_ADDR_SIZE', 'SubstreamID', 31, 12),
    ('EVT_F_ADDR_SIZE', 'StreamID', 63, 32),
    ('EVT_F_ADDR_SIZE', 'STAG', 79, 64),
    ('EVT_F_ADDR_SIZE', 'Stall', 95, 95),
    ('EVT_F_ADDR_SIZE', 'PnU', 97, 97),
    ('EVT_F_ADDR_SIZE', 'InD', 98, 98),
    ('EVT_F_ADDR_SIZE', 'RnW', 99, 99),
    ('EVT_F_ADDR_SIZE', 'NSIPA', 102, 102),
    ('EVT_F_ADDR_SIZE', 'S2', 103, 103),
    ('EVT_F_ADDR_SIZE', 'CLASS', 105, 104),
    ('EVT_F_ADDR_SIZE', 'InputAddr', 191, 128),
    ('EVT_F_ADDR_SIZE', 'IPA', 247, 204),
    # 7.3.15 F_ACCESS
    ('EVT_F_ACCESS', 'Type', 7, 0),
    ('EVT_F_ACCESS', 'SSV', 11, 11),
    ('EVT_F_ACCESS', 'SubstreamID', 31, 12),
    ('EVT_F_ACCESS', 'StreamID', 63, 32),
    ('EVT_F_ACCESS', 'STAG', 79, 64),
    ('EVT_F_ACCESS', 'Stall', 95, 95),
    ('EVT_F_ACCESS', 'PnU', 97, 97),
    ('EVT_F_ACCESS', 'InD', 98, 98),
    ('EVT_F_ACCESS', 'RnW', 99, 99),
    ('EVT_F_ACCESS', 'NSIPA', 102, 102),
    ('EVT_F_ACCESS', 'S2', 103, 103),
    ('EVT_F_ACCESS', 'CLASS', 105, 104),
    ('EVT_F_ACCESS', 'InputAddr', 191, 128),
    ('EVT_F_ACCESS', 'IPA', 247, 204),
    # 7.3.16 F_PERMISSION
    ('EVT_F_PERMISSION', 'Type', 7, 0),
    ('EVT_F_PERMISSION', 'SSV', 11, 11),
    ('EVT_F_PERMISSION', 'SubstreamID', 31, 12),
    ('EVT_F_PERMISSION', 'StreamID', 63, 32),
    ('EVT_F_PERMISSION', 'STAG', 79, 64),
    ('EVT_F_PERMISSION', 'Stall', 95, 95),
    ('EVT_F_PERMISSION', 'PnU', 97, 97),
    ('EVT_F_PERMISSION', 'InD', 98, 98),
    ('EVT_F_PERMISSION', 'RnW', 99, 99),
    ('EVT_F_PERMISSION', 'NSIPA', 102, 102),
    ('EVT_F_PERMISSION', 'S2', 103, 103),
    ('EVT_F_PERMISSION', 'CLASS', 105, 104),
    ('EVT_F_PERMISSION', 'InputAddr', 191, 128),
    ('EVT_F_PERMISSION', 'IPA', 247, 204),
    ('EVT_F_PERMISSION', 'TTRnW', 108, 108),
    # 7.3.17 F_TLB_CONFLICT
    ('EVT_F_TLB_CONFLICT', 'Type', 7, 0),
    ('EVT_F_TLB_CONFLICT', 'SSV', 11, 11),
    ('EVT_F_TLB_CONFLICT', 'SubstreamID', 31, 12),
    ('EVT_F_TLB_CONFLICT', 'StreamID', 63, 32),
    ('EVT_F_TLB_CONFLICT', 'Reason', 95, 64),
    ('EVT_F_TLB_CONFLICT', 'PnU', 97, 97),
    ('EVT_F_TLB_CONFLICT', 'InD', 98, 98),
    ('EVT_F_TLB_CONFLICT', 'RnW', 99, 99),
    ('EVT_F_TLB_CONFLICT', 'S2', 103, 103),
    ('EVT_F_TLB_CONFLICT', 'InputAddr', 191, 128),
    ('EVT_F_TLB_CONFLICT', 'IPA', 247, 204),
    # 7.3.18 F_CFG_CONFLICT
    ('EVT_F_CFG_CONFLICT', 'Type', 7, 0),
    ('EVT_F_CFG_CONFLICT', 'SSV', 11, 11),
    ('EVT_F_CFG_CONFLICT', 'SubstreamID', 31, 12),
    ('EVT_F_CFG_CONFLICT', 'StreamID', 63, 32),
    ('EVT_F_CFG_CONFLICT', 'Reason', 95, 64),
    # 7.3.20 F_VMS_FETCH
    ('EVT_F_VMS_FETCH', 'Type', 7, 0),
    ('EVT_F_VMS_FETCH', 'SSV', 11, 11),
    ('EVT_F_VMS_FETCH', 'SubstreamID', 31, 12),
    ('EVT_F_VMS_FETCH', 'StreamID', 63, 32),
    ('EVT_F_VMS_FETCH', 'Reason', 79, 64),
    ('EVT_F_VMS_FETCH', 'GPCF', 80, 80),
    ('EVT_F_VMS_FETCH', 'FetchAddr', 247, 195),
]

OPCODE_SPEC = {   # IHI 0070 4.1.1
    "CMD_PREFETCH_CONFIG": 0x01, "CMD_PREFETCH_ADDR": 0x02, "CMD_CFGI_STE": 0x03,
    "CMD_CFGI_STE_RANGE": 0x04, "CMD_CFGI_ALL": 0x04, "CMD_CFGI_CD": 0x05, "CMD_CFGI_CD_ALL": 0x06,
    "CMD_TLBI_NH_ALL": 0x10, "CMD_TLBI_NH_ASID": 0x11, "CMD_TLBI_NH_VA": 0x12,
    "CMD_TLBI_NH_VAA": 0x13, "CMD_TLBI_EL2_ALL": 0x20, "CMD_TLBI_EL2_ASID": 0x21,
    "CMD_TLBI_EL2_VA": 0x22, "CMD_TLBI_EL2_VAA": 0x23, "CMD_TLBI_S12_VMALL": 0x28,
    "CMD_TLBI_S2_IPA": 0x2A, "CMD_TLBI_NSNH_ALL": 0x30, "CMD_ATC_INV": 0x40, "CMD_PRI_RESP": 0x41,
    "CMD_RESUME": 0x44, "CMD_STALL_TERM": 0x45, "CMD_SYNC": 0x46,
}

EVENT_SPEC = {    # IHI 0070 7.3.2 - 7.3.20
    "F_UUT": 0x01, "C_BAD_STREAMID": 0x02, "F_STE_FETCH": 0x03, "C_BAD_STE": 0x04,
    "F_BAD_ATS_TREQ": 0x05, "F_STREAM_DISABLED": 0x06, "F_TRANSL_FORBIDDEN": 0x07,
    "C_BAD_SUBSTREAMID": 0x08, "F_CD_FETCH": 0x09, "C_BAD_CD": 0x0A, "F_WALK_EABT": 0x0B,
    "F_TRANSLATION": 0x10, "F_ADDR_SIZE": 0x11, "F_ACCESS": 0x12, "F_PERMISSION": 0x13,
    "F_TLB_CONFLICT": 0x20, "F_CFG_CONFLICT": 0x21, "E_PAGE_REQUEST": 0x24, "F_VMS_FETCH": 0x25,
}

OFFSET_SPEC = {   # IHI 0070 6.2 / 6.3 "Accessible at offset ..."; page 1 at +0x10000
    "SMMU_IDR0": 0x0, "SMMU_IDR1": 0x4, "SMMU_IDR2": 0x8, "SMMU_IDR3": 0xC, "SMMU_IDR4": 0x10,
    "SMMU_IDR5": 0x14, "SMMU_IIDR": 0x18, "SMMU_AIDR": 0x1C, "SMMU_CR0": 0x20,
    "SMMU_CR0ACK": 0x24, "SMMU_CR1": 0x28, "SMMU_CR2": 0x2C, "SMMU_STATUSR": 0x40,
    "SMMU_GBPA": 0x44, "SMMU_IRQ_CTRL": 0x50, "SMMU_IRQ_CTRLACK": 0x54, "SMMU_GERROR": 0x60,
    "SMMU_GERRORN": 0x64, "SMMU_GERROR_IRQ_CFG0": 0x68, "SMMU_GERROR_IRQ_CFG1": 0x70,
    "SMMU_GERROR_IRQ_CFG2": 0x74, "SMMU_STRTAB_BASE": 0x80, "SMMU_STRTAB_BASE_CFG": 0x88,
    "SMMU_CMDQ_BASE": 0x90, "SMMU_CMDQ_PROD": 0x98, "SMMU_CMDQ_CONS": 0x9C,
    "SMMU_EVENTQ_BASE": 0xA0, "SMMU_EVENTQ_PROD": 0x100A8, "SMMU_EVENTQ_CONS": 0x100AC,
    "SMMU_EVENTQ_IRQ_CFG0": 0xB0, "SMMU_EVENTQ_IRQ_CFG1": 0xB8, "SMMU_EVENTQ_IRQ_CFG2": 0xBC,
    "SMMU_PRIQ_BASE": 0xC0, "SMMU_PRIQ_PROD": 0x100C8, "SMMU_PRIQ_CONS": 0x100CC,
    "SMMU_PRIQ_IRQ_CFG0": 0xD0, "SMMU_PRIQ_IRQ_CFG1": 0xD8, "SMMU_PRIQ_IRQ_CFG2": 0xDC,
}
# 64-bit registers (IHI 0070 6.3 "is a 64-bit register"); the rest are 32-bit.
REG64 = {"SMMU_GERROR_IRQ_CFG0", "SMMU_STRTAB_BASE", "SMMU_CMDQ_BASE", "SMMU_EVENTQ_BASE",
         "SMMU_EVENTQ_IRQ_CFG0", "SMMU_PRIQ_BASE", "SMMU_PRIQ_IRQ_CFG0"}

TESTED_FORMATS = sorted({row[0] for row in SPEC_FIELDS})
FORMATS = formats("smmuv3")


def _as_int(words):
    return sum(w << (64 * i) for i, w in enumerate(words))


def _bits(hi, lo):
    return ((1 << (hi - lo + 1)) - 1) << lo


@pytest.mark.parametrize("name,field,hi,lo", SPEC_FIELDS,
                         ids=[f"{r[0]}.{r[1]}" for r in SPEC_FIELDS])
def test_field_sets_exactly_its_architected_bits(name, field, hi, lo):
    f = fmt(name)
    width = hi - lo + 1
    words = f.encode(**{field: (1 << width) - 1})
    assert _as_int(words) == _bits(hi, lo), f"{name}.{field} is not at [{hi}:{lo}]"
    assert f.decode(words)[field] == (1 << width) - 1
    with pytest.raises(FieldError):
        f.encode(**{field: 1 << width})


def test_every_format_is_covered():
    assert set(TESTED_FORMATS) == set(FORMATS), set(FORMATS) ^ set(TESTED_FORMATS)


@pytest.mark.parametrize("name", TESTED_FORMATS)
def test_table_fields_match_the_transcription(name):
    expected = {r[1] for r in SPEC_FIELDS if r[0] == name}
    actual = {f.name for f in fmt(name).fields}
    assert actual == expected, f"{name}: extra {actual - expected}, missing {expected - actual}"


def test_rows_are_unique():
    keys = [(r[0], r[1]) for r in SPEC_FIELDS]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("name", TESTED_FORMATS)
def test_sizes(name):
    f = fmt(name)
    if name.startswith("CMD_"):
        assert f.size == 16
    elif name.startswith("EVT_"):
        assert f.size == 32
    elif name.startswith("SMMU_"):
        assert f.size == (8 if name in REG64 else 4)
        assert all(fl.hi < 8 * f.size for fl in f.fields)
    elif name in ("STE", "CD"):
        assert f.size == 64
    else:
        assert f.size == 8


@st.composite
def _values(draw, name):
    f = fmt(name)
    return {fl.name: draw(st.integers(0, fl.mask)) for fl in f.fields}


@pytest.mark.parametrize("name", TESTED_FORMATS)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_roundtrip(name, data):
    f = fmt(name)
    values = data.draw(_values(name))
    words = f.encode(**values)
    assert f.decode(words) == values
    assert f.decode(f.from_bytes(f.to_bytes(words))) == values
    assert f.reserved_bits(words) == []


def test_opcodes():
    assert fields_queue.OPCODES == OPCODE_SPEC
    assert fields_queue.OTHER_OPCODES["CMD_CFGI_VMS_PIDM"] == 0x07
    assert fields_queue.OTHER_OPCODES["CMD_TLBI_EL3_ALL"] == 0x18
    assert fields_queue.OTHER_OPCODES["CMD_TLBI_EL3_VA"] == 0x1A
    assert fields_queue.OTHER_OPCODES["CMD_TLBI_S_S2_IPA"] == 0x5A
    for name, op in OPCODE_SPEC.items():
        assert events.encode_cmd(name)[0] == op


def test_event_codes_and_cerror():
    assert fields_queue.EVENT_TYPES == EVENT_SPEC
    assert fields_queue.CERROR == {"CERROR_NONE": 0, "CERROR_ILL": 1, "CERROR_ABT": 2,
                                   "CERROR_ATC_INV_SYNC": 3}
    for name, code in EVENT_SPEC.items():
        assert events.event_name(code) == name
    assert events.event_name(0xE3) == "IMPDEF_EVENT"
    assert events.event_name(0x30) == "UNKNOWN"
    assert events.cerror_name(3) == "CERROR_ATC_INV_SYNC"


def test_generated_codes():
    # The named constants (smmudbg.arch.smmuv3.consts; the same names in core_cy/_smmuv3.pxd).
    for name, code in {**EVENT_SPEC, **OPCODE_SPEC}.items():
        assert getattr(consts, name) == code, name
    assert consts.CMD_TLBI_EL3_ALL == 0x18 and consts.CMD_CFGI_VMS_PIDM == 0x07
    assert (consts.CERROR_NONE, consts.CERROR_ILL, consts.CERROR_ABT,
            consts.CERROR_ATC_INV_SYNC) == (0, 1, 2, 3)
    assert consts.EVENT_NAMES == {c: n for n, c in EVENT_SPEC.items()}


def test_register_offsets_and_aliases():
    assert registers.OFFSETS == OFFSET_SPEC
    assert set(registers.OFFSETS) == {n for n in registers.FORMATS}
    for alias, name in registers.ALIASES.items():
        assert name in registers.FORMATS and alias.replace("EVTQ", "EVENTQ") == name
    for name in registers.PAGE1:
        assert registers.OFFSETS[name] & 0x10000


def test_register_reset_values():
    # CR0/IRQ_CTRL/GERROR(N) reset to 0 (every field "resets to '0'"); GBPA.Update resets to 0.
    assert registers.RESET["SMMU_CR0"] == 0 and registers.RESET_MASK["SMMU_CR0"] == 0x5DF
    assert registers.RESET_MASK["SMMU_GBPA"] == 1 << 31
    for name, mask in registers.RESET_MASK.items():
        f = fmt(name)
        covered = 0
        for fl in f.fields:
            covered |= fl.mask << fl.lo
        assert mask & ~covered == 0, name
        assert registers.RESET[name] & ~mask == 0


def _dwords(raw):
    return list(struct.unpack(f"<{len(raw) // 8}Q", raw))


def test_vector_f_translation_stage2_tt():
    # Stage 2 fault while fetching a stage 1 descriptor (CLASS = TT, S2 = 1), IHI 0070 7.3.13.
    raw = events.encode_event("F_TRANSLATION", SSV=1, SubstreamID=0x5, StreamID=0x12, RnW=1,
                              S2=1, CLASS="TT", InputAddr=0xFFFF800012345000, IPA=0x800003)
    assert _dwords(raw) == [
        0x0000001200005810,   # StreamID 0x12 | SubstreamID 5 <<12 | SSV <<11 | 0x10
        0x0000018800000000,   # CLASS=01 [105:104], S2 [103], RnW [99]
        0xFFFF800012345000,   # InputAddr
        0x0000000800003000,   # IPA[55:12] = 0x8_0000_3000
    ]
    d = events.decode_event(raw)
    assert d["Type"] == 0x10 and d["S2"] == 1 and d["CLASS"] == 1 and d["IPA"] << 12 == 0x800003000
    assert events.event_name(d["Type"]) == "F_TRANSLATION"


def test_vector_f_ste_fetch():
    raw = events.encode_event("EVT_F_STE_FETCH", StreamID=0x100, Reason=0xAB, GPCF=1,
                              FetchAddr=0x40000040 >> 3)
    assert _dwords(raw) == [0x0000010000000003, 0x00000000000100AB, 0, 0x0000000040000040]


def test_vector_f_permission_ttrnw_stall():
    raw = events.encode_event("F_PERMISSION", StreamID=1, STAG=0x1234, Stall=1, PnU=1, InD=0,
                              RnW=0, S2=1, CLASS=1, TTRnW=1, InputAddr=0x1000, IPA=0x40)
    assert _dwords(raw) == [0x0000000100000013, 0x0000118280001234, 0x1000, 0x40000]


def test_vector_cmd_sync():
    raw = events.encode_cmd("CMD_SYNC", CS="SIG_IRQ", MSH="ISH", MSIAttr=0xF,
                            MSIData=0xDEADBEEF, MSIAddress=0x90000040 >> 2)
    assert _dwords(raw) == [0xDEADBEEF0FC01046, 0x0000000090000040]
    assert events.decode_cmd(raw) == ("CMD_SYNC", {"Opcode": 0x46, "CS": 1, "MSH": 3,
                                                   "MSIAttr": 0xF, "MSIData": 0xDEADBEEF,
                                                   "MSIAddress": 0x90000040 >> 2})


def test_vector_tlbi_nh_va():
    raw = events.encode_cmd("CMD_TLBI_NH_VA", VMID=1, ASID=2, NUM=3, SCALE=1, Leaf=1, TTL=3,
                            TG="4K", Address=0x7FFFF000 >> 12)
    assert _dwords(raw) == [0x0002000100103012, 0x000000007FFFF701]


def test_vector_tlbi_s2_ipa_and_s12_vmall():
    assert _dwords(events.encode_cmd("CMD_TLBI_S12_VMALL", VMID=0xBEEF)) == [0x0000BEEF00000028, 0]
    raw = events.encode_cmd("CMD_TLBI_S2_IPA", VMID=7, Address=0xFF_FFFF_FFFF_F000 >> 12)
    assert _dwords(raw) == [0x000000070000002A, 0x00FFFFFFFFFFF000]


def test_cfgi_all_is_cfgi_ste_range_31():
    raw = events.encode_cmd("CMD_CFGI_ALL")
    assert _dwords(raw) == [0x04, 31]
    assert events.decode_cmd(raw) == ("CMD_CFGI_ALL", {"Opcode": 4, "SSec": 0, "StreamID": 0,
                                                       "Range": 31})
    raw = events.encode_cmd("CMD_CFGI_STE_RANGE", StreamID=0x40, Range=5)
    assert events.decode_cmd(raw) == ("CMD_CFGI_STE_RANGE", {"Opcode": 4, "SSec": 0,
                                                             "StreamID": 0x40, "Range": 5})


def test_cmd_resume_matches_linux_resp_encoding():
    # Linux CMDQ_RESUME_0_RESP [13:12]: 0 TERM, 1 RETRY, 2 ABORT.
    for ac, ab, resp in ((0, 0, 0), (1, 0, 1), (0, 1, 2)):
        raw = events.encode_cmd("CMD_RESUME", StreamID=3, Ac=ac, Ab=ab, STAG=9)
        assert (_dwords(raw)[0] >> 12) & 3 == resp
        assert _dwords(raw)[1] == 9


def test_unknown_and_unmodelled_opcodes():
    assert events.decode_cmd(bytes([0x99]) + bytes(15)) == ("UNKNOWN", {"Opcode": 0x99})
    assert events.decode_cmd(bytes([0x18]) + bytes(15)) == ("CMD_TLBI_EL3_ALL", {"Opcode": 0x18})
    with pytest.raises(FieldError):
        events.encode_cmd("CMD_NOPE")
    with pytest.raises(FieldError):
        events.decode_cmd(bytes(8))


def test_decode_event_unknown_type_gives_header():
    raw = struct.pack("<4Q", 0x0000000700000830, 0, 0, 0)
    d = events.decode_event(raw)
    assert d == {"Type": 0x30, "SSV": 1, "SubstreamID": 0, "StreamID": 7}


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(sorted(EVENT_SPEC)), st.data())
def test_event_roundtrip_by_type(name, data):
    f = events.event_format(name)
    values = {fl.name: data.draw(st.integers(0, fl.mask)) for fl in f.fields if fl.name != "Type"}
    raw = events.encode_event(name, **values)
    d = events.decode_event(raw)
    assert d.pop("Type") == EVENT_SPEC[name]
    assert d == values


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(sorted(OPCODE_SPEC)), st.data())
def test_cmd_roundtrip_by_opcode(name, data):
    f = fmt(name)
    values = {fl.name: data.draw(st.integers(0, fl.mask)) for fl in f.fields
              if fl.name not in ("Opcode", "Range")}
    if "range" in f.by_name:
        values["Range"] = 31 if name == "CMD_CFGI_ALL" else data.draw(st.integers(0, 30))
    got_name, d = events.decode_cmd(events.encode_cmd(name, **values))
    assert got_name == name
    assert d.pop("Opcode") == OPCODE_SPEC[name]
    assert d == values
