"""Issue 15 reproducers in the input layers, each with the exact input from the issue: a one-line
error naming what and where, never a hang (how fast: benchmarks/bench_hostile.py), with
nothing allocated for the hostile value."""
from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from smmudbg.errors import ScenarioError, SmmuDbgError, brief
from smmudbg.importers.qemu import QemuImportError, import_qemu, load_regs
from smmudbg.importers.qemu_dump import DumpError, load_memory
from smmudbg.model import scenario as sc
from smmudbg.model.system import System
from smmudbg.textfile import open_regular, read_bytes, read_text

from test_fuzz_inputs import EHDR, PHDR, bounded, tiny_elf

ROOT = Path(__file__).resolve().parent.parent
REGS = ROOT / "tests" / "fixtures" / "qemu" / "regs.json"
DEFAULT = sc.builtin("default")


def one_line_error(fn, kind, within: float = 1.0) -> str:
    """fn() must raise `kind` with a one-line message (no answer within 5 x `within` seconds
    is a hang and fails; speed is bench_hostile.py's)."""
    with bounded(max(within * 5, 5.0)):     # a hang fails the test instead of blocking it
        with pytest.raises(kind) as e:
            fn()
    msg = str(e.value)
    assert msg and "\n" not in msg and len(msg) < 300 and "internal error" not in msg, msg
    return msg


@pytest.fixture
def fifo(tmp_path):
    p = tmp_path / "fifo"
    os.mkfifo(p)
    return str(p)


# -- files: one reader, regular files only -----------------------------------------------------
@pytest.mark.parametrize("path,kind", [("/dev/zero", "a character device"),
                                       ("/dev/urandom", "a character device"),
                                       ("/", "a directory")])
def test_text_reader_refuses_devices_and_directories(path, kind):
    msg = one_line_error(lambda: read_text(path, ScenarioError, "scenario file"), ScenarioError)
    assert msg == f"{path}: not a scenario file ({kind}, not a regular file)"


def test_text_reader_refuses_a_fifo_without_blocking(fifo):
    # Nobody writes the FIFO: opening it for reading would block forever.
    msg = one_line_error(lambda: read_text(fifo, ScenarioError, "script"), ScenarioError)
    assert msg == f"{fifo}: not a script (a FIFO, not a regular file)"


def test_text_reader_refuses_a_symlink_to_a_fifo(fifo, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(fifo)
    msg = one_line_error(lambda: read_bytes(link, ScenarioError, "session file"), ScenarioError)
    assert "a FIFO" in msg


def test_nul_and_newline_in_file_names(tmp_path):
    msg = one_line_error(lambda: read_text("a\0b.toml", ScenarioError, "scenario file"),
                         ScenarioError)
    assert msg == "'a\\x00b.toml': file name contains a NUL byte"
    msg = one_line_error(lambda: read_text(str(tmp_path / "a\nb"), ScenarioError, "x"),
                         ScenarioError)
    assert msg.endswith("\\nb': cannot open: No such file or directory")


def test_size_limit_is_checked_before_reading(tmp_path):
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(10 << 30)                    # sparse: 10 GiB of holes
    msg = one_line_error(lambda: read_text(big, ScenarioError, "scenario file"), ScenarioError)
    assert msg == f"{big}: not a scenario file (larger than 64 MiB)"
    small = tmp_path / "small"
    small.write_bytes(b"x" * 1025)
    assert "larger than 1 KiB" in one_line_error(
        lambda: read_bytes(small, ScenarioError, "register file", 1024), ScenarioError)
    assert read_bytes(small, ScenarioError, "register file", 1025) == b"x" * 1025


def test_open_regular_gives_a_binary_file(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"\x00\x01")
    with open_regular(p, ScenarioError, "dump") as f:
        assert f.read() == b"\x00\x01"
        assert os.get_blocking(f.fileno())


def test_scenario_from_urandom_and_fifo(fifo):
    # `smmudbg --scenario /dev/urandom` read until memory ran out.
    assert "a character device" in one_line_error(lambda: System.from_file("/dev/urandom"),
                                                  ScenarioError)
    assert "a FIFO" in one_line_error(lambda: System.from_file(fifo), ScenarioError)


@pytest.mark.parametrize("which", ["memory", "regs"])
def test_import_qemu_of_a_fifo_does_not_block(fifo, which, tmp_path):
    """A FIFO named in a session's `import qemu` line blocked `smmudbg replay` forever: run the
    import in a child with a timeout, so a regression fails instead of hanging the suite."""
    mem = fifo if which == "memory" else str(tmp_path / "unused.elf")
    regs = fifo if which == "regs" else str(REGS)
    code = ("import sys; from smmudbg.importers.qemu import import_qemu\n"
            "try:\n    import_qemu(sys.argv[1], sys.argv[2])\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code, mem, regs], capture_output=True,
                         text=True, timeout=30, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    want = "memory dump" if which == "memory" else "register file"
    assert out.stdout == f"QemuImportError {fifo}: not a {want} (a FIFO, not a regular file)\n"
    assert out.stderr == ""


def test_script_importing_a_fifo_fails_with_one_line(fifo, tmp_path):
    """The same through a script run by the CLI (the path `replay` takes): exit non-zero with
    one error line, no traceback, no hang."""
    script = tmp_path / "s.smmu"
    script.write_text(f"import qemu {fifo} --regs {REGS}\n")
    out = subprocess.run([sys.executable, "-c", "import sys; from smmudbg.cli import main; "
                          "sys.exit(main(sys.argv[1:]))", "run", str(script)],
                         capture_output=True, text=True, timeout=60, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode != 0
    assert "Traceback" not in out.stdout + out.stderr
    assert "not a memory dump (a FIFO, not a regular file)" in out.stdout + out.stderr


@pytest.mark.parametrize("path", ["/dev/zero", "/", "a\0b"])
def test_dump_and_regs_readers_refuse_non_files(path):
    for fn, kind in ((lambda: load_memory(path), DumpError),
                     (lambda: load_regs(path), QemuImportError),
                     (lambda: import_qemu(path, REGS), QemuImportError)):
        msg = one_line_error(fn, kind)
        assert ("not a regular file" in msg) or ("NUL byte" in msg)


# -- ELF program headers -------------------------------------------------------------------------
def elf_with(tmp_path, index, **fields):
    """The fuzzer's seed ELF (two PT_LOADs) with program header `index`'s fields replaced."""
    raw = tiny_elf()
    at = EHDR.size + index * PHDR.size
    names = ("p_type", "p_flags", "p_offset", "p_vaddr", "p_paddr", "p_filesz", "p_memsz",
             "p_align")
    vals = dict(zip(names, PHDR.unpack_from(raw, at)))
    vals.update(fields)
    PHDR.pack_into(raw, at, *(vals[n] for n in names))
    p = tmp_path / "dump.elf"
    p.write_bytes(raw)
    return str(p), len(raw)


def test_elf_filesz_past_the_end_of_the_file(tmp_path):
    path, size = elf_with(tmp_path, 1, p_filesz=1 << 40, p_memsz=1 << 40)
    msg = one_line_error(lambda: load_memory(path), DumpError)
    assert msg.startswith(f"{path}: PT_LOAD #1 (p_paddr 0x40010000): p_offset 0x3000 + "
                          f"p_filesz 0x10000000000")
    assert f"past the end of the file ({size:#x} bytes" in msg


def test_elf_offset_past_the_end_of_the_file(tmp_path):
    path, _ = elf_with(tmp_path, 0, p_offset=2 ** 64 - 0x1000)
    assert "PT_LOAD #0 (p_paddr 0x40000000): p_offset 0xfffffffffffff000" in one_line_error(
        lambda: load_memory(path), DumpError)


def test_elf_memsz_beyond_the_address_space(tmp_path):
    # Was OverflowError (mmap of 2^63 bytes); p_paddr + p_memsz > 2^64.
    path, _ = elf_with(tmp_path, 1, p_memsz=2 ** 64 - 1)
    msg = one_line_error(lambda: load_memory(path), DumpError)
    assert "PT_LOAD #1 (p_paddr 0x40010000): p_paddr + p_memsz 0xffffffffffffffff" in msg
    assert "beyond the 64-bit physical address space" in msg


def test_elf_memsz_absurd_for_the_file(tmp_path):
    # Was OSError: Cannot allocate memory (an anonymous mapping of 2^50 bytes).
    path, _ = elf_with(tmp_path, 0, p_paddr=0, p_memsz=1 << 50)
    msg = one_line_error(lambda: load_memory(path), DumpError)
    assert "PT_LOAD #0 (p_paddr 0x0): p_memsz 0x4000000000000 exceeds p_filesz 0x2000" in msg


def test_elf_filesz_above_memsz(tmp_path):
    path, _ = elf_with(tmp_path, 0, p_filesz=0x2001)
    assert "PT_LOAD #0 (p_paddr 0x40000000): p_filesz 0x2001 > p_memsz 0x2000" in \
        one_line_error(lambda: load_memory(path), DumpError)


def test_elf_overlapping_segments(tmp_path):
    path, _ = elf_with(tmp_path, 1, p_paddr=0x4000_1000)
    assert "PT_LOAD #0 (p_paddr 0x40000000..0x40002000) overlaps PT_LOAD #1" in \
        one_line_error(lambda: load_memory(path), DumpError)


def test_elf_program_headers_past_the_end(tmp_path):
    raw = tiny_elf()
    struct.pack_into("<H", raw, 56, 0xFFFE)                       # e_phnum
    p = tmp_path / "d.elf"
    p.write_bytes(raw)
    msg = one_line_error(lambda: load_memory(str(p)), DumpError)
    assert "e_phnum 65534 program headers end at" in msg


def test_elf_pn_xnum_count_is_bounded(tmp_path):
    """e_phnum = PN_XNUM (0xffff): the count is section header 0's sh_info, here 2^20."""
    raw = tiny_elf()
    shoff = len(raw)
    raw += struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 1 << 20, 0, 0)   # Elf64_Shdr
    struct.pack_into("<Q", raw, 40, shoff)                                    # e_shoff
    struct.pack_into("<H", raw, 56, 0xFFFF)                                   # e_phnum
    p = tmp_path / "d.elf"
    p.write_bytes(raw)
    msg = one_line_error(lambda: load_memory(str(p)), DumpError)
    assert msg == f"{p}: e_phnum 1048576 program headers: more than 65536"


def test_elf_small_zero_fill_still_loads(tmp_path):
    """p_memsz above p_filesz within bounds is zero-filled, as before."""
    path, _ = elf_with(tmp_path, 1, p_memsz=0x10_0000)
    segs = load_memory(path)
    assert segs[1].size == 0x10_0000 and bytes(segs[1].data[0xFFF:0x1001]) == b"\x02\x00"


# -- scenarios -----------------------------------------------------------------------------------
def _sub(old, new, text=DEFAULT):
    assert old in text
    return text.replace(old, new, 1)


SCENARIO_CASES = [
    # (issue's input, edit of the default scenario, the message after "t.toml: ")
    ("s1cdmax = 0xffffffff", _sub("s1cdmax = 2", "s1cdmax = 0xffffffff"),
     "stream[0].cd_table.s1cdmax: 4294967295 is outside 0..8 (STE.S1CDMax, at most "
     "SMMU_IDR1.SSIDSIZE of smmu0)"),
    ("in = 2^64", _sub("in = 0x0000_1000_0000", "in = 0x1_0000_0000_0000_0000"),
     "domain[1].maps[0].in: 0x10000000000000000 does not fit in 64 bits"),
    ("out = -1", _sub("out = 0x4100_0000", "out = -1"),
     "domain[1].maps[0].out: -1 is negative"),
    ("vabits = 2^63-1", _sub("vabits = 48", "vabits = 9223372036854775807"),
     "domain[1].vabits: 9223372036854775807 is outside 16..52 (input address bits, 64 - TnSZ)"),
    ("vm = []", _sub('\nvm = "vm0"', "\nvm = []"),
     "domain[1].vm: an array is not a declared VM"),
    ("thousands of digits", _sub("asid = 16", "asid = " + "9" * 4000),
     "domain[3].asid: a 13288-bit integer is outside 0..0xffff (CD.ASID)"),
    ("more digits than Python converts", _sub("asid = 16", "asid = " + "9" * 5000),
     "not valid TOML: Exceeds the limit (4300 digits) for integer string conversion"),
    ("nesting 1000 deep", DEFAULT + "x = " + "[" * 1000 + "]" * 1000 + "\n",
     "not valid TOML: arrays or tables nested too deeply"),
    ("LOG2SIZE 40", _sub("log2size = 16", "log2size = 40"),
     "smmu[0].stream_table.log2size: 40 is outside 0..16 (SMMU_STRTAB_BASE_CFG.LOG2SIZE, at "
     "most SMMU_IDR1.SIDSIZE)"),
    ("split 7", _sub("split = 8", "split = 7"),
     "smmu[0].stream_table.split: 7 is not one of 6, 8, 10 (SMMU_STRTAB_BASE_CFG.SPLIT)"),
    ("SIDSIZE 33", _sub("SIDSIZE = 16", "SIDSIZE = 33"),
     "smmu[0].features.SIDSIZE: 33 is outside 0..32 (SMMU_IDR1.SIDSIZE)"),
    ("SSIDSIZE 21", _sub("SSIDSIZE = 8", "SSIDSIZE = 21"),
     "smmu[0].features.SSIDSIZE: 21 is outside 0..20 (SMMU_IDR1.SSIDSIZE)"),
    ("linear 2^32 stream table", _sub('SIDSIZE = 16', 'SIDSIZE = 32', _sub(
        'format = "2lvl", log2size = 16', 'format = "linear", log2size = 32')),
     "smmu[0].stream_table: the linear stream table would be 0x4000000000 bytes; the model "
     "builds at most 256 MiB per table"),
    ("count 2^32", _sub("sid = 0x0300\n", "sid = 0x0300\ncount = 0x1_0000_0000\n"),
     "stream[3].count: 0x100000000 is outside 1..0xfd00 (StreamIDs from 0x300 must fit the "
     "2^16-entry stream table of smmu0)"),
    ("ram wraps", _sub("size = 0x4000_0000", "size = 0xffff_ffff_ffff_ffff"),
     "ram[0]: 0x40000000 + size 0xffffffffffffffff wraps past 2^64"),
    ("cmdq_log2size 99", _sub("cmdq_log2size = 8", "cmdq_log2size = 99"),
     "smmu[0].cmdq_log2size: 99 is outside 0..19 (at most SMMU_IDR1.CMDQS)"),
    ("caching = []", _sub("cmdq_log2size = 8", "cmdq_log2size = 8\ncaching = []"),
     "smmu[0].caching: expected true or false, got an array"),
    ("config = []", _sub('config = "s1"', "config = []"),
     "stream[1].config: an array is not one of abort, bypass, s1, s2, nested"),
    ("ssid beyond s1cdmax", _sub("ssid = 1,", "ssid = 4,"),
     "stream[0].cds[1].ssid: 4 is beyond S1CDMax 2 (SubstreamIDs below 2^2)"),
    ("a huge string", _sub('config = "nested"', 'config = "' + "x" * 10000 + '"'),
     "stream[0].config: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' (10000 characters) "
     "is not one of abort, bypass, s1, s2, nested"),
]


@pytest.mark.parametrize("label,text,message", SCENARIO_CASES, ids=[c[0] for c in SCENARIO_CASES])
def test_scenario_reproducers(label, text, message, tmp_path):
    p = tmp_path / "t.toml"
    p.write_text(text)
    msg = one_line_error(lambda: System.from_file(str(p)), ScenarioError)
    if message.startswith("not valid TOML"):
        assert msg == f"{p}: {message}"
        return
    # file:line: message, the line being the one where the offending key is written.
    m = re.fullmatch(re.escape(str(p)) + r":(\d+): (.*)", msg)
    assert m and m.group(2) == message, msg
    key = re.match(r"[\w\[\].]*?(\w+)(\[\d+\])?:", message).group(1)
    assert re.search(rf"\b{key}\b", text.splitlines()[int(m.group(1)) - 1]), (key, m.group(1))


def test_scenario_checks_come_before_any_allocation():
    """s1cdmax = 0xffffffff once took 24 s and 4.2 GB: the check is in the schema, so parsing
    alone refuses it, and nothing is built."""
    with pytest.raises(ScenarioError):
        sc.parse(_sub("s1cdmax = 2", "s1cdmax = 0xffffffff"), "t")


def test_largest_architected_values_still_build():
    """The bounds are the architecture's: SSIDSIZE 20 with a 2-level CD table of S1CDMax 20,
    SIDSIZE 32 with a 2-level stream table of LOG2SIZE 32 and SPLIT 10, 2^19-entry queues."""
    text = _sub("SSIDSIZE = 8, SIDSIZE = 16", "SSIDSIZE = 20, SIDSIZE = 32")
    text = _sub('format = "2lvl", log2size = 16, split = 8', 'format = "2lvl", log2size = 32, '
                'split = 10', text)
    text = _sub('cd_table = { format = "linear", s1cdmax = 2 }',
                'cd_table = { format = "2lvl_64k", s1cdmax = 20 }', text)
    text = _sub("cmdq_log2size = 8\nevtq_log2size = 7", "cmdq_log2size = 19\nevtq_log2size = 19",
                text)
    text = _sub("pool = { base = 0x4000_0000, size = 0x0100_0000 }",
                "pool = { base = 0x4000_0000, size = 0x0800_0000 }", text)
    with bounded(120):                      # a hang fails (the time: bench_hostile.py)
        s = System.from_text(text, "t")
    smmu = s.smmu("smmu0")
    assert smmu.field("STRTAB_BASE_CFG", "LOG2SIZE") == 32
    assert smmu.field("CMDQ_BASE", "LOG2SIZE") == 19


def test_stream_count_bound():
    """A stream `count` is bounded by its stream table and by MAX_STREAMS in all."""
    # The other streams and MAX_STREAMS more are too many (the bound is 2^18 since the
    # four-SMMU example; it was 2^16).
    count = f"count = {sc.MAX_STREAMS:#x}"
    text = _sub("SIDSIZE = 16", "SIDSIZE = 19")
    text = _sub("log2size = 16", "log2size = 19", text)
    text = _sub("sid = 0x0300\n", f"sid = 0x0300\n{count}\n", text)
    msg = one_line_error(lambda: sc.parse(text, "t"), ScenarioError)
    line = text.splitlines().index(count) + 1
    assert msg == f"t:{line}: stream[3].count: more than {sc.MAX_STREAMS} StreamIDs in one scenario " \
                  f"(the model's bound)"


def test_brief_keeps_values_short():
    assert brief(2 ** 64) == "0x10000000000000000"
    assert brief(10 ** 4000) == "a 13288-bit integer"
    assert brief(-(10 ** 4000)) == "a 13288-bit negative integer"
    assert brief(40, decimal=True) == "40" and brief(40) == "0x28" and brief(7) == "7"
    assert brief("x" * 100) == "'" + "x" * 49 + "...' (100 characters)"
    assert brief([[[]]]) == "an array" and brief({}) == "a table"
    assert brief("a\nb") == "'a\\nb'"


# -- register files ------------------------------------------------------------------------------
def test_register_value_of_thousands_of_digits(tmp_path):
    p = tmp_path / "regs.json"
    p.write_text('{"SMMU_IDR0": "' + "9" * 4000 + '"}')
    msg = one_line_error(lambda: load_regs(p), QemuImportError)
    assert msg == f"{p}: 'SMMU_IDR0': a 13288-bit integer does not fit in the 32-bit register " \
                  f"SMMU_IDR0"


def test_register_sizes_beyond_the_architecture(tmp_path):
    import json
    regs = json.loads(REGS.read_text())
    regs["SMMU_IDR1"] = hex(int(regs["SMMU_IDR1"], 16) | 0x3F)      # SIDSIZE = 63
    p = tmp_path / "regs.json"
    p.write_text(json.dumps(regs))
    msg = one_line_error(lambda: import_qemu(os.devnull, p), QemuImportError)
    assert msg == f"{p}: SMMU_IDR1.SIDSIZE=63 exceeds the architectural maximum 32 " \
                  f"(IHI 0070 6.3.2)"


def test_errors_are_user_errors():
    assert issubclass(ScenarioError, SmmuDbgError) and issubclass(QemuImportError, SmmuDbgError)


# -- dumps whose tables are garbage --------------------------------------------------------------
def _garbage_import(tmp_path, **cfg):
    """A 16 MiB raw dump of random bytes at PA 0, with the fixture's registers but SIDSIZE 32,
    SMMUEN 0 and the stream table at 0 with the given SMMU_STRTAB_BASE_CFG fields."""
    import json
    import random
    from smmudbg.arch.fieldtable import fmt
    regs = json.loads(REGS.read_text())
    idr1 = [int(regs["SMMU_IDR1"], 16)]
    fmt("SMMU_IDR1").field("SIDSIZE").put(idr1, 32)
    regs.update(SMMU_IDR1=hex(idr1[0]), SMMU_CR0="0x0", SMMU_STRTAB_BASE="0x0",
                SMMU_STRTAB_BASE_CFG=hex(fmt("SMMU_STRTAB_BASE_CFG").encode(**cfg)[0]))
    r = tmp_path / "regs.json"
    r.write_text(json.dumps(regs))
    d = tmp_path / "garbage.raw"
    d.write_bytes(random.Random(15).randbytes(16 << 20))
    with bounded(120):                      # a hang fails (the time: bench_hostile.py)
        _, report = import_qemu(d, r, ram_base=0)
    return report


def test_garbage_linear_stream_table_is_bounded_work(tmp_path):
    """LOG2SIZE 32: 2^32 STEs architected, 2^18 of them in the dump, about 7/16 of those valid
    and not abort. Only what the dump holds is read; MAX_STREAMS are declared, warnings are
    counted instead of listed one per stream."""
    from smmudbg.importers.qemu import MAX_STREAMS
    report = _garbage_import(tmp_path, FMT=0, LOG2SIZE=32)
    assert len(report["streams"]) == MAX_STREAMS
    assert f"more than {MAX_STREAMS} streams found; only the first {MAX_STREAMS} are " \
           f"declared" in report["warnings"]
    assert f"{(1 << 32) - (16 << 20) // 64} STEs of the linear stream table are not in the " \
           f"dump" in report["warnings"]
    assert len(report["warnings"]) < 40


def test_garbage_two_level_stream_table_is_bounded_work(tmp_path):
    """SPLIT 6, LOG2SIZE 32: 2^26 L1STDs architected, 2^21 in the dump, almost all with a
    reserved Span or an L2 pointer outside the dump."""
    report = _garbage_import(tmp_path, FMT=1, LOG2SIZE=32, SPLIT=6)
    assert len(report["warnings"]) < 40
    assert any(w.startswith("... and ") and w.endswith("more L1STDs with a reserved Span")
               for w in report["warnings"])


def test_a_huge_scenario_name_stays_short_in_a_build_error():
    # The long fuzz profile found a 400+ character error: the name was quoted whole.
    from smmudbg.errors import ScenarioError
    from smmudbg.model import scenario as sc
    from smmudbg.model.system import System
    text = sc.builtin("default").replace('name = "default"', 'name = "' + "x" * 5000 + '"', 1)
    spec = sc.parse(text, "big-name.toml")
    spec["smmu"][0]["stream_table"]["log2size"] = 40          # fails while building
    try:
        System(spec)
    except ScenarioError as e:
        assert len(str(e)) < 400 and "\n" not in str(e)
    else:
        raise AssertionError("a 2^40-entry stream table was built")


def test_names_listed_in_an_error_are_cut(tmp_path):
    """Found by the long input fuzz run: an iommufd reference error listed the names declared
    before in full (a 5,000-digit name: a 5,738-character line)."""
    from smmudbg.errors import listing
    text = (ROOT / "examples" / "vsmmu-accel.toml").read_text()
    old = '{ name = "nic1", smmu = "smmu0"'
    assert old in text
    p = tmp_path / "t.toml"
    p.write_text(text.replace(old, '{ name = "' + "9" * 5000 + '", smmu = "smmu0"', 1)
                 .replace('hwpt = [{ name = "s2", device = "nic0"',
                          'hwpt = [{ name = "s2", device = "nic9"', 1))
    msg = one_line_error(lambda: System.from_file(str(p)), ScenarioError)
    assert msg.endswith("iommufd.hwpt[0].device: 'nic9' is not an iommufd device declared "
                        "before (have: nic0, '" + "9" * 49 + "...' (5000 characters))"), msg
    assert listing([]) == "none" and listing(["a", "b"]) == "a, b"
    assert listing(["x" * 30] * 10) == ", ".join(["x" * 30] * 5) + ", ... (10 in all)"


def test_ram_that_cannot_be_reserved_is_a_scenario_error():
    """Found by the long input fuzz run: 2^56 bytes of RAM (more than a process can map) was
    'MemoryError escaped'; now the scenario's RAM is named in one line."""
    text = _sub("size = 0x4000_0000", "size = 0x100_0000_0000_0000")
    msg = one_line_error(lambda: System.from_text(text, "t"), ScenarioError)
    assert msg == ("scenario 'default': ram[0]: cannot reserve 0x100000000000000 bytes of "
                   "address space at 0x40000000 for the modeled RAM (is `ulimit -v` set?)")
