"""GICv3 ITS commands (Arm IHI 0069, 5.3 "ITS commands"): 32-byte entries of four
little-endian 64-bit words, the command number in DW0[7:0].

Pure data, no imports. Each field is (name, dword, hi, lo, doc[, enum[, attrs]]). Field
positions are the architecture's; QEMU (hw/intc/gicv3_internal.h) lays them out the same way.
With GITS_TYPER.PTA = 0 (this model) RDbase holds the target's processor number
(GICR_TYPER.Processor_Number); with PTA = 1 it holds the redistributor's physical address
bits [51:16].

CODES["ItsCmdOpcode"] names every command number (GITS_CMD_<command>, as QEMU and Linux
spell them). The GICv4 commands are recognised but not modelled: they have no format here,
and an ITS whose GITS_TYPER.Virtual is 0 (this model) treats them as unknown commands.

CODES["ItsError"] are the command-error encodings of IHI 0069 5.5 ("ITS command error
encodings"), 0x01CCEE: CC numbers the command, EE the error. Where each value comes from:
  L  Linux include/linux/irqchip/arm-gic-v3.h (E_ITS_*), which copies the spec's table;
  T  Arm CoreLink GIC-600AE TRM (101206) "ITS command errors", which lists them per command;
  P  derived from the same scheme (EE: 01 DEVICE_OOR, 03 COLLECTION_OOR, 04 UNMAPPED_DEVICE,
     05 ID_OOR, 07 UNMAPPED_INTERRUPT, 09 UNMAPPED_COLLECTION), not read from a table.
A write to GITS_TRANSLATER that fails reports with the INT_* encodings (T: "an incoming
translation has attempted to use ...").
"""

OPCODES = {
    "GITS_CMD_MOVI": 0x01,
    "GITS_CMD_INT": 0x03,
    "GITS_CMD_CLEAR": 0x04,
    "GITS_CMD_SYNC": 0x05,
    "GITS_CMD_MAPD": 0x08,
    "GITS_CMD_MAPC": 0x09,
    "GITS_CMD_MAPTI": 0x0A,
    "GITS_CMD_MAPI": 0x0B,
    "GITS_CMD_INV": 0x0C,
    "GITS_CMD_INVALL": 0x0D,
    "GITS_CMD_MOVALL": 0x0E,
    "GITS_CMD_DISCARD": 0x0F,
}

# GICv4 / GICv4.1 commands: recognised (named in the log), not modelled.
GICV4_OPCODES = {
    "GITS_CMD_VMOVI": 0x21,
    "GITS_CMD_VMOVP": 0x22,
    "GITS_CMD_VSGI": 0x23,
    "GITS_CMD_VSYNC": 0x25,
    "GITS_CMD_VMAPP": 0x29,
    "GITS_CMD_VMAPTI": 0x2A,
    "GITS_CMD_VMAPI": 0x2B,
    "GITS_CMD_VINVALL": 0x2D,
    "GITS_CMD_INVDB": 0x2E,
}

ERRORS = {
    "MOVI_DEVICE_OOR": 0x010101,               # P
    "MOVI_COLLECTION_OOR": 0x010103,           # P
    "MOVI_UNMAPPED_DEVICE": 0x010104,          # P
    "MOVI_ID_OOR": 0x010105,                   # P
    "MOVI_UNMAPPED_INTERRUPT": 0x010107,       # L
    "MOVI_UNMAPPED_COLLECTION": 0x010109,      # L
    "INT_DEVICE_OOR": 0x010301,                # T
    "INT_COLLECTION_OOR": 0x010303,            # P
    "INT_UNMAPPED_DEVICE": 0x010304,           # T
    "INT_ID_OOR": 0x010305,                    # T
    "INT_UNMAPPED_INTERRUPT": 0x010307,        # L, T
    "INT_UNMAPPED_COLLECTION": 0x010309,       # P
    "CLEAR_DEVICE_OOR": 0x010501,              # T
    "CLEAR_COLLECTION_OOR": 0x010503,          # P
    "CLEAR_UNMAPPED_DEVICE": 0x010504,         # T
    "CLEAR_ID_OOR": 0x010505,                  # T
    "CLEAR_UNMAPPED_INTERRUPT": 0x010507,      # L, T
    "CLEAR_UNMAPPED_COLLECTION": 0x010509,     # P
    "MAPD_DEVICE_OOR": 0x010801,               # L
    "MAPD_ITTSIZE_OOR": 0x010802,              # L
    "MAPC_PROCNUM_OOR": 0x010902,              # L
    "MAPC_COLLECTION_OOR": 0x010903,           # L
    "MAPTI_DEVICE_OOR": 0x010A01,              # P
    "MAPTI_COLLECTION_OOR": 0x010A03,          # P
    "MAPTI_UNMAPPED_DEVICE": 0x010A04,         # L
    "MAPTI_ID_OOR": 0x010A05,                  # L
    "MAPTI_PHYSICALID_OOR": 0x010A06,          # L
    "MAPI_DEVICE_OOR": 0x010B01,               # P
    "MAPI_COLLECTION_OOR": 0x010B03,           # P
    "MAPI_UNMAPPED_DEVICE": 0x010B04,          # P
    "MAPI_ID_OOR": 0x010B05,                   # P
    "MAPI_PHYSICALID_OOR": 0x010B06,           # P
    "INV_DEVICE_OOR": 0x010C01,                # T
    "INV_COLLECTION_OOR": 0x010C03,            # P
    "INV_UNMAPPED_DEVICE": 0x010C04,           # T
    "INV_ID_OOR": 0x010C05,                    # P
    "INV_UNMAPPED_INTERRUPT": 0x010C07,        # L
    "INV_UNMAPPED_COLLECTION": 0x010C09,       # P
    "INVALL_COLLECTION_OOR": 0x010D03,         # T
    "INVALL_UNMAPPED_COLLECTION": 0x010D09,    # L, T
    "MOVALL_PROCNUM_OOR": 0x010E01,            # L
    "DISCARD_DEVICE_OOR": 0x010F01,            # P
    "DISCARD_COLLECTION_OOR": 0x010F03,        # P
    "DISCARD_UNMAPPED_DEVICE": 0x010F04,       # P
    "DISCARD_ID_OOR": 0x010F05,                # P
    "DISCARD_UNMAPPED_INTERRUPT": 0x010F07,    # L, T
    "DISCARD_UNMAPPED_COLLECTION": 0x010F09,   # P
}

_CMD = ("CommandType", 0, 7, 0, "ITS command number")
_DEVICEID = ("DeviceID", 0, 63, 32, "DeviceID")
_EVENTID = ("EventID", 1, 31, 0, "EventID")
_ICID = ("ICID", 2, 15, 0, "Interrupt collection ID")
_RDBASE = ("RDbase", 2, 51, 16, "Target redistributor (PTA=0: processor number)", None,
           {"number": True})
_NUMBER = {"number": True}

_CMDS = {
    # 5.3.15
    "MAPD": [_CMD, _DEVICEID,
             ("Size", 1, 4, 0, "EventID bits of the device, minus one", None, _NUMBER),
             ("ITT_addr", 2, 51, 8, "Interrupt translation table address [51:8]", None,
              {"addr": 8}),
             ("V", 2, 63, 63, "Valid: 1 maps the device, 0 unmaps it")],
    # 5.3.14
    "MAPC": [_CMD, _ICID, _RDBASE,
             ("V", 2, 63, 63, "Valid: 1 maps the collection, 0 unmaps it")],
    # 5.3.17
    "MAPTI": [_CMD, _DEVICEID, _EVENTID,
              ("pINTID", 1, 63, 32, "Physical LPI INTID the event raises"), _ICID],
    # 5.3.16: pINTID = EventID.
    "MAPI": [_CMD, _DEVICEID, _EVENTID, _ICID],
    # 5.3.19
    "MOVI": [_CMD, _DEVICEID, _EVENTID, _ICID],
    # 5.3.18
    "MOVALL": [_CMD,
               ("RDbase1", 2, 51, 16, "Source redistributor", None, _NUMBER),
               ("RDbase2", 3, 51, 16, "Target redistributor", None, _NUMBER)],
    # 5.3.8
    "DISCARD": [_CMD, _DEVICEID, _EVENTID],
    # 5.3.12
    "INV": [_CMD, _DEVICEID, _EVENTID],
    # 5.3.13
    "INVALL": [_CMD, _ICID],
    # 5.3.11
    "INT": [_CMD, _DEVICEID, _EVENTID],
    # 5.3.7
    "CLEAR": [_CMD, _DEVICEID, _EVENTID],
    # 5.3.20
    "SYNC": [_CMD, _RDBASE],
}

# Command name (as a format) -> its command number.
COMMAND_OF_OPCODE = {v: k[len("GITS_CMD_"):] for k, v in {**OPCODES, **GICV4_OPCODES}.items()}

CODES = {"ItsCmdOpcode": {**OPCODES, **GICV4_OPCODES}, "ItsError": ERRORS}

FORMATS = {name: (32, flds) for name, flds in _CMDS.items()}
# What every command shares: its number in DW0[7:0], named (the ITS reads this first).
FORMATS["ITS_CMD"] = (32, [_CMD + (COMMAND_OF_OPCODE,)])
