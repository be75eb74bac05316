"""The .drv parser on real Nix 2.8 output (captured below), on damaged input, and, where Nix
is installed, against ``nix show-derivation`` of freshly instantiated derivations."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from sbomgen.errors import DerivationError
from sbomgen.nix import derivation as drv_module
from sbomgen.nix.derivation import Derivation, DerivationOutput, parse_derivation, read_derivation
from sbomgen.nix.hashes import parse_ca, parse_hash

# Written by nix-instantiate 2.8 into a store whose logical directory is /nix/store, from
#   mk = a: derivation ({ system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; } // a)
# MULTI: outputs [ "out" "lib" "dev" ], an input using two outputs (libfoo's dev and out), a
#   path literal (an inputSrc), and escapes, in Nix syntax:
#     args = [ "-c" "printf 'a\\tb\\n' > $out\necho \"q\" \\\\ done" ];
#     script = "line1\nline2\ttab \"quoted\" back\\slash";
# SRC: flat fixed output (fetchurl-like, url); VENDORED: recursive fixed output (urls, SRI
#   outputHash); NOARGS: args = [ ]; CA: a floating content-addressed output (__contentAddressed);
#   IMPURE: __impure = true; HELLO: the command line of the task that asked for this parser.

# /nix/store/99yrqm4ggik141lamj2vd7hrr9h7i740-foo-1.2.drv
MULTI = (
    r"""Derive([("dev","/nix/store/1mhjxiva3hx5vx78sv400jn0dpra3gqv-foo-1.2-dev","",""),("lib","""
    r""""/nix/store/6y1givf7ma2j20kvsssmnywmr2g42877-foo-1.2-lib","",""),("out","""
    r""""/nix/store/5isq45j0x6ihzk4vjhglsfcfkp5n91jk-foo-1.2","","")],"""
    r"""[("/nix/store/hwhwbsqr1s5s6jv293cc2ynrxkbv5m6m-foo-1.2.tar.gz.drv",["out"]),"""
    r"""("/nix/store/lb1pf968knilb203dnb8nw5zfagf1jyj-libfoo-1.2.drv",["dev","out"])],"""
    r"""["/nix/store/r57bqgzndlsbcn84d6nyjw98f7zsrpv2-setup.sh"],"x86_64-linux","/bin/sh",["-c","""
    r""""printf 'a\\tb\\n' > $out\necho \"q\" \\\\ done"],[("PATH","/usr/bin:/bin"),("buildInputs","""
    r""""/nix/store/9yk9ykhrjqxzm96ff58d5qffcb30r1x3-libfoo-1.2-dev /nix/store/bi8id973cwqgdwp5cfxfpq47x2xp6k9a-libfoo-1.2"),"""
    r"""("builder","/bin/sh"),("dev","/nix/store/1mhjxiva3hx5vx78sv400jn0dpra3gqv-foo-1.2-dev"),("lib","""
    r""""/nix/store/6y1givf7ma2j20kvsssmnywmr2g42877-foo-1.2-lib"),("name","foo-1.2"),("out","""
    r""""/nix/store/5isq45j0x6ihzk4vjhglsfcfkp5n91jk-foo-1.2"),("outputs","out lib dev"),("pname","""
    r""""foo"),("script","line1\nline2\ttab \"quoted\" back\\slash"),("setup","""
    r""""/nix/store/r57bqgzndlsbcn84d6nyjw98f7zsrpv2-setup.sh"),("src","""
    r""""/nix/store/1w7dz2vw568gb5mppg3aqaav1jj2wpq6-foo-1.2.tar.gz"),("system","x86_64-linux"),"""
    r"""("version","1.2")])"""
)

# /nix/store/hwhwbsqr1s5s6jv293cc2ynrxkbv5m6m-foo-1.2.tar.gz.drv
SRC = (
    r"""Derive([("out","/nix/store/1w7dz2vw568gb5mppg3aqaav1jj2wpq6-foo-1.2.tar.gz","sha256","""
    r""""2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae")],[],[],"x86_64-linux","""
    r""""/bin/sh",["-c","printf foo > $out"],[("PATH","/usr/bin:/bin"),("builder","/bin/sh"),("name","""
    r""""foo-1.2.tar.gz"),("out","/nix/store/1w7dz2vw568gb5mppg3aqaav1jj2wpq6-foo-1.2.tar.gz"),"""
    r"""("outputHash","2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"),"""
    r"""("outputHashAlgo","sha256"),("outputHashMode","flat"),("system","x86_64-linux"),("url","""
    r""""https://example.org/foo-1.2.tar.gz")])"""
)

# /nix/store/nfighr35qz87xdk6c4f7rzdranc1q5v4-foo-vendor.drv
VENDORED = (
    r"""Derive([("out","/nix/store/5xi5z1yzb4vf8wqr0d4p5m9c9347732z-foo-vendor","r:sha256","""
    r""""a50a5ab6d992f5598edd92105059fae9acfc192981e08bd88534c2167e92526a")],[],[],"x86_64-linux","""
    r""""/bin/sh",["-c","mkdir $out"],[("PATH","/usr/bin:/bin"),("builder","/bin/sh"),("name","""
    r""""foo-vendor"),("out","/nix/store/5xi5z1yzb4vf8wqr0d4p5m9c9347732z-foo-vendor"),("outputHash","""
    r""""sha256-pQpattmS9VmO3ZIQUFn66az8GSmB4IvYhTTCFn6SUmo="),("outputHashAlgo","sha256"),"""
    r"""("outputHashMode","recursive"),("system","x86_64-linux"),("urls","""
    r""""https://a.example/v.tar https://b.example/v.tar")])"""
)

# /nix/store/8rsgzvbc8d067shkchrh72ddl5jscbm9-noargs.drv
NOARGS = (
    r"""Derive([("out","/nix/store/cxscbh5fgfvy5f4pjl4xzfmkm2ml5xvx-noargs","","")],[],[],"""
    r""""x86_64-linux","/bin/sh",[],[("PATH","/usr/bin:/bin"),("builder","/bin/sh"),("name","noargs"),"""
    r"""("out","/nix/store/cxscbh5fgfvy5f4pjl4xzfmkm2ml5xvx-noargs"),("system","x86_64-linux")])"""
)

# /nix/store/0ay4plin6z1nkvw8n1j91yna7nrv4blw-ca-1.drv
CA = (
    r"""Derive([("out","","r:sha256","")],[],[],"x86_64-linux","/bin/sh",["-c","echo > $out"],[("PATH","""
    r""""/usr/bin:/bin"),("builder","/bin/sh"),("name","ca-1"),("out","""
    r""""/1rz4g4znpzjwh1xymhjpm42vipw92pr73vdgl6xs1hycac8kf2n9"),("outputHashAlgo","sha256"),"""
    r"""("outputHashMode","recursive"),("system","x86_64-linux")])"""
)

# /nix/store/qwc0p24i4cfalm4icg050yn2r6i588cl-impure-1.drv
IMPURE = (
    r"""Derive([("out","","r:sha256","impure")],[],[],"x86_64-linux","/bin/sh",["-c","echo > $out"],"""
    r"""[("PATH","/usr/bin:/bin"),("builder","/bin/sh"),("name","impure-1"),("out","""
    r""""/1rz4g4znpzjwh1xymhjpm42vipw92pr73vdgl6xs1hycac8kf2n9"),("system","x86_64-linux")])"""
)

# /nix/store/75fgnx2m51l9dkb3hzgh26ah7pbm60rq-x-1.0.drv
HELLO = (
    r"""Derive([("out","/nix/store/k5lzsc7xjdpkpjzj1bcslk21mmgkmh9c-x-1.0","","")],[],[],"x86_64-linux","""
    r""""/bin/sh",["-c","echo \"hi\\n\" > $out"],[("PATH","/usr/bin:/bin"),("builder","/bin/sh"),"""
    r"""("name","x-1.0"),("out","/nix/store/k5lzsc7xjdpkpjzj1bcslk21mmgkmh9c-x-1.0"),("system","""
    r""""x86_64-linux")])"""
)


# its ValidPaths.ca in the store DB: text hashing, the sha256 of the file
SRC_CA = "text:sha256:1yyls03vhqlv89fxlaym12sbn4bk2ija7fkvyysl9g25kp29c5q2"
HELLO_CA = "text:sha256:1j80kx4skcrnwzqa6nnhpzcyhcmm5pc1wg0y54z34rh433pvgkj5"

REAL = {"MULTI": MULTI, "SRC": SRC, "VENDORED": VENDORED, "NOARGS": NOARGS, "CA": CA, "IMPURE": IMPURE, "HELLO": HELLO}
S = "/nix/store/"


def test_multi_output():
    drv = parse_derivation(MULTI, S + "99yrqm4ggik141lamj2vd7hrr9h7i740-foo-1.2.drv")
    assert drv.path == S + "99yrqm4ggik141lamj2vd7hrr9h7i740-foo-1.2.drv"
    assert list(drv.outputs) == ["dev", "lib", "out"]  # .drv order (sorted by Nix)
    assert drv.output_names == ("out", "lib", "dev")  # declared order, from env["outputs"]
    assert drv.outputs["lib"] == DerivationOutput("lib", S + "6y1givf7ma2j20kvsssmnywmr2g42877-foo-1.2-lib", "", "")
    assert drv.input_drvs == {
        S + "hwhwbsqr1s5s6jv293cc2ynrxkbv5m6m-foo-1.2.tar.gz.drv": ("out",),
        S + "lb1pf968knilb203dnb8nw5zfagf1jyj-libfoo-1.2.drv": ("dev", "out"),
    }
    assert drv.input_srcs == (S + "r57bqgzndlsbcn84d6nyjw98f7zsrpv2-setup.sh",)
    assert (drv.system, drv.builder) == ("x86_64-linux", "/bin/sh")
    assert drv.args == ("-c", "printf 'a\\tb\\n' > $out\necho \"q\" \\\\ done")
    assert drv.env["script"] == 'line1\nline2\ttab "quoted" back\\slash'
    assert drv.name == "foo-1.2" and drv.env["pname"] == "foo" and drv.env["version"] == "1.2"
    assert len(drv.env) == 14 and list(drv.env)[:3] == ["PATH", "buildInputs", "builder"]
    assert not drv.is_fixed_output
    out = drv.outputs["out"]
    assert not out.is_fixed and out.mode is None and out.algo is None


def test_fixed_output_flat():
    drv = parse_derivation(SRC)
    out = drv.outputs["out"]
    assert drv.is_fixed_output and out.is_fixed
    assert (out.hash_algo, out.mode, out.algo) == ("sha256", "flat", "sha256")
    assert out.hash == hashlib.sha256(b"foo").hexdigest() == drv.env["outputHash"]
    assert drv.env["url"] == "https://example.org/foo-1.2.tar.gz"
    assert drv.input_drvs == {} and drv.input_srcs == () and drv.path is None


def test_fixed_output_recursive():
    drv = parse_derivation(VENDORED)
    out = drv.outputs["out"]
    assert drv.is_fixed_output
    assert (out.hash_algo, out.mode, out.algo) == ("r:sha256", "recursive", "sha256")
    # the hex in the .drv is the SRI the expression declared
    assert parse_hash(out.hash, out.hash_algo).sri == drv.env["outputHash"]
    assert drv.env["urls"].split() == ["https://a.example/v.tar", "https://b.example/v.tar"]


def test_empty_args():
    drv = parse_derivation(NOARGS)
    assert drv.args == () and drv.input_drvs == {} and drv.input_srcs == ()
    assert drv.name == "noargs" and drv.env["builder"] == "/bin/sh"


def test_floating_ca_and_impure_outputs_are_not_fixed():
    floating = parse_derivation(CA).outputs["out"]
    assert floating.path == "" and floating.mode == "recursive" and floating.algo == "sha256"
    assert not floating.is_fixed and not parse_derivation(CA).is_fixed_output
    impure = parse_derivation(IMPURE).outputs["out"]
    assert impure.hash == "impure" and not impure.is_fixed and not parse_derivation(IMPURE).is_fixed_output


def test_text_output_mode():
    out = DerivationOutput("out", S + "x", "text:sha256", "ab" * 32)
    assert (out.mode, out.algo, out.is_fixed) == ("text", "sha256", True)


def test_hello():
    drv = parse_derivation(HELLO)
    assert drv.args == ("-c", 'echo "hi\\n" > $out')
    assert drv.outputs["out"].path == drv.env["out"] == S + "k5lzsc7xjdpkpjzj1bcslk21mmgkmh9c-x-1.0"


@pytest.mark.parametrize("text,ca", [(SRC, SRC_CA), (HELLO, HELLO_CA)])
def test_literals_are_the_files_nix_wrote(text, ca):
    """The store DB's content address of each .drv is the sha256 of these very bytes."""
    assert parse_ca(ca).hash.digest == hashlib.sha256(text.encode()).digest()


@pytest.mark.parametrize("name", sorted(REAL))
def test_fast_path_takes_real_drvs_and_agrees_with_the_exact_parser(name):
    fast = drv_module._parse_fast(REAL[name])
    assert fast is not None
    assert fast == drv_module._parse_exact(REAL[name])


HAND_WRITTEN = [
    # every escape Nix writes, escapes at both ends, empty strings, and a non-ASCII value
    (
        (
            r'Derive([("out","/s/o","","")],[],[],"s","b",["\\","\"","a\\\\b\"",""],'
            r'[("cr","a\rb"),("nl","\n"),("tab","\t\t"),("q","\"x\""),("bs","\\"),("e",""),("u","é☃")])'
        ),
        {
            "args": ("\\", '"', 'a\\\\b"', ""),
            "env": {"cr": "a\rb", "nl": "\n", "tab": "\t\t", "q": '"x"', "bs": "\\", "e": "", "u": "é☃"},
        },
    ),
    # empty everything, including the environment
    ('Derive([("out","","","")],[],[],"","",[],[])', {"args": (), "env": {}}),
    # args but no env; inputSrcs but no inputDrvs
    ('Derive([("out","/s/o","","")],[],["/s/a","/s/b"],"s","b",["x"],[])', {"args": ("x",), "env": {}}),
]


@pytest.mark.parametrize("text,expected", HAND_WRITTEN)
def test_hand_written_forms(text, expected):
    drv = parse_derivation(text)
    assert drv.args == expected["args"] and drv.env == expected["env"]
    assert drv_module._parse_fast(text) == drv_module._parse_exact(text)


def test_escapes_nix_does_not_write():
    """A backslash before any other character stands for that character (the exact parser reads it)."""
    drv = parse_derivation(r'Derive([("out","/s/o","","")],[],[],"s","b",["\$x\a"],[])')
    assert drv.args == ("$xa",)
    assert drv_module._parse_fast(r'Derive([("out","/s/o","","")],[],[],"s","b",["\$x"],[])') is None


def test_trailing_whitespace_is_tolerated():
    assert parse_derivation(SRC + "\n") == parse_derivation(SRC)


def test_dynamic_derivation_form():
    """``DrvWithVersion("xp-dyn-drv",...)`` as newer Nix writes it for dynamic derivation inputs."""
    text = (
        'DrvWithVersion("xp-dyn-drv",[("out","/s/o","","")],'
        '[("/s/a.drv",(["dev"],[("out",(["lib"],[("x",["y"])]))])),("/s/b.drv",["out"])],'
        '[],"x86_64-linux","/bin/sh",[],[("name","o")])'
    )
    drv = parse_derivation(text)
    # /s/a.drv's own output "out" is needed (it builds the .drv whose "lib" is used)
    assert drv.input_drvs == {"/s/a.drv": ("dev", "out"), "/s/b.drv": ("out",)}
    assert drv.name == "o" and list(drv.outputs) == ["out"]
    assert parse_derivation("DrvWithVersion(" + '"xp-dyn-drv",' + SRC[len("Derive(") :]) == parse_derivation(SRC)
    with pytest.raises(DerivationError, match="expected a known derivation version .* at offset 15"):
        parse_derivation('DrvWithVersion("v9",' + SRC[len("Derive(") :], "/s/new.drv")


def corrupt(text: str, path: str = "/s/broken.drv") -> str:
    with pytest.raises(DerivationError) as info:
        parse_derivation(text, path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"corrupt derivation {path}: expected ")
    assert info.value.exit_code == 6
    return message


TYPE_AT = SRC.index('"x86_64-linux"') + len('"x86_64-linux"')
PATH_AT = SRC.index('("PATH"') + len('("PATH"')
DEV_AT = MULTI.index('["dev"') + len('["dev"')


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "expected 'Derive(' or 'DrvWithVersion(' at offset 0"),
        ("garbage", "expected 'Derive(' or 'DrvWithVersion(' at offset 0"),
        ("Derive", "expected 'Derive(' or 'DrvWithVersion(' at offset 0"),
        ("Derive(", "expected '[' at offset 7"),
        ("Derive([", "expected '(' at offset 8"),
        ('Derive([("out"', "expected ',' at offset 14"),
        ('Derive([("out', "expected '\"' (the end of the string) at offset 13"),
        (SRC[:-1], f"expected ')' at offset {len(SRC) - 1}"),
        (SRC[:-3], f"expected ')' at offset {len(SRC) - 3}"),
        (SRC[:-2], f"expected ',' or ']' at offset {len(SRC) - 2}"),
        (SRC + "trailing", f"expected the end of the file at offset {len(SRC)}"),
        (SRC + ")", f"expected the end of the file at offset {len(SRC)}"),
        (SRC.replace('"x86_64-linux",', '"x86_64-linux"', 1), f"expected ',' at offset {TYPE_AT}"),
        (SRC.replace("[],[]", "[],[1]", 1), f"expected '\"' (a string) at offset {SRC.index('[],[]') + 4}"),
        (SRC.replace('("PATH"', '("PATH" ', 1), f"expected ',' at offset {PATH_AT}"),
        (SRC.replace("),(", ");(", 1), f"expected ',' or ']' at offset {SRC.index('),(') + 1}"),
        (MULTI.replace('["dev","out"]', '["dev""out"]'), f"expected ',' or ']' at offset {DEV_AT}"),
        ('Derive([("out","/s/o","","")],[],[],"s","b",["a\\', "expected an escaped character at offset 48"),
    ],
)
def test_corrupt(text, message):
    assert corrupt(text).endswith(message)


def test_every_truncation_is_an_error_with_an_offset():
    for size in range(len(MULTI)):
        message = corrupt(MULTI[:size])
        offset = int(message.rsplit(" ", 1)[1])
        assert 0 <= offset <= size, (size, message)


def test_offsets_count_bytes():
    text = 'Derive([("out","/s/é☃","",""),]'  # é is 2 bytes in UTF-8, ☃ 3
    assert corrupt(text).endswith(f"at offset {len(text.encode()) - 1}")


def test_unknown_text_is_named_in_errors():
    with pytest.raises(DerivationError, match=r"^corrupt derivation <text>: expected"):
        parse_derivation("x")


def test_fast_and_exact_parsers_agree_on_damaged_text():
    """Random edits of real .drv text: the fast path may give up, but never disagree or be laxer."""
    rng = random.Random(1)
    alphabet = '"\\,()[]an \0\1\2'
    texts = list(REAL.values()) + [text for text, _ in HAND_WRITTEN]
    fast_ok = 0
    for _ in range(4000):
        text = rng.choice(texts)
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(text) + 1)
            edit = rng.randrange(3)
            if edit == 0:
                text = text[:at] + rng.choice(alphabet) + text[at:]
            elif edit == 1:
                text = text[:at] + text[at + 1 :]
            else:
                text = text[:at] + rng.choice(alphabet) + text[at + 1 :]
        fast = drv_module._parse_fast(text)
        try:
            exact = drv_module._parse_exact(text)
        except drv_module._SyntaxError:
            assert fast is None, repr(text)
            with pytest.raises(DerivationError):
                parse_derivation(text)
            continue
        if fast is not None:
            fast_ok += 1
            assert fast == exact, repr(text)
    assert fast_ok > 1000  # edits inside strings keep the text valid: the fast path must take those


def test_read_derivation(tmp_path):
    path = tmp_path / "99yrqm4ggik141lamj2vd7hrr9h7i740-foo-1.2.drv"
    path.write_text(MULTI, encoding="utf-8")
    drv = read_derivation(str(path))
    assert isinstance(drv, Derivation)
    assert drv == parse_derivation(MULTI, str(path)) and drv.path == str(path)


def test_read_derivation_keeps_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "latin1.drv"
    path.write_bytes(b'Derive([("out","/s/o","","")],[],[],"s","b",[],[("v","caf\xe9")])')
    assert read_derivation(str(path)).env["v"].encode("utf-8", "surrogateescape") == b"caf\xe9"


def test_read_derivation_names_the_file_and_byte_offset(tmp_path):
    path = tmp_path / "bad.drv"
    path.write_bytes('Derive([("é"x'.encode())  # "x" is character 12, byte 13
    with pytest.raises(DerivationError) as info:
        read_derivation(str(path))
    assert str(info.value) == f"corrupt derivation {path}: expected ',' at offset 13"


def test_missing_file(tmp_path):
    with pytest.raises(DerivationError, match=f"derivation not found: {tmp_path}/x.drv") as info:
        read_derivation(str(tmp_path / "x.drv"))
    assert info.value.exit_code == 6


def test_unreadable_file(tmp_path):
    path = tmp_path / "dir.drv"
    path.mkdir()
    with pytest.raises(DerivationError, match=f"cannot read derivation {path}: Is a directory"):
        read_derivation(str(path))


@pytest.mark.nix
def test_real_drv_files(nix_store):
    """Every .drv in the fixture store parses, and agrees with `nix-store -q --outputs`."""
    drvs = sorted(p for p in nix_store.store_dir.iterdir() if p.name.endswith(".drv"))
    assert len(drvs) >= 15
    for path in drvs:
        drv = read_derivation(str(path))
        outputs = set(nix_store.run("nix-store", "-q", "--outputs", str(path)).split())
        assert {o.path for o in drv.outputs.values()} == outputs
        refs = set(nix_store.run("nix-store", "-q", "--references", str(path)).split())
        assert set(drv.input_drvs) | set(drv.input_srcs) == refs


EXPRESSION = r"""
let
  mk = a: derivation ({ system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; } // a);
  lib = mk { name = "libfoo-1.2"; outputs = [ "out" "dev" ]; args = [ "-c" "mkdir $out $dev" ]; };
  src = mk {
    name = "foo-1.2.tar.gz"; args = [ "-c" "printf foo > $out" ]; url = "https://example.org/foo-1.2.tar.gz";
    outputHashMode = "flat"; outputHashAlgo = "sha256"; outputHash = builtins.hashString "sha256" "foo";
  };
in {
  multi = mk {
    name = "foo-1.2"; outputs = [ "out" "lib" "dev" ]; inherit src; buildInputs = [ lib.dev lib ];
    setup = builtins.toFile "setup.sh" "echo setup";
    args = [ "-c" "printf 'a\\tb\\n' > $out\necho \"q\" \\\\ done\r" ];
    script = "line1\nline2\ttab \"quoted\" back\\slash ${"\\\\"} é ☃";
  };
  vendored = mk {
    name = "foo-vendor"; args = [ ]; outputHashMode = "recursive"; outputHashAlgo = "sha256";
    outputHash = "sha256-pQpattmS9VmO3ZIQUFn66az8GSmB4IvYhTTCFn6SUmo=";
  };
}
"""


@pytest.mark.nix
@pytest.mark.parametrize("attr", ["multi", "vendored"])
def test_agrees_with_nix_show_derivation(tmp_path, attr):
    if shutil.which("nix-instantiate") is None or shutil.which("nix") is None:
        pytest.skip("nix is not installed")
    env = {
        **os.environ,
        "NIX_STORE_DIR": str(tmp_path / "store"),
        "NIX_STATE_DIR": str(tmp_path / "state"),
        "NIX_LOG_DIR": str(tmp_path / "log"),
        "NIX_CONFIG": "substituters =\nexperimental-features = nix-command\n",
    }
    (tmp_path / "e.nix").write_text(EXPRESSION)

    def run(*args: str) -> str:
        return subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout

    path = run("nix-instantiate", str(tmp_path / "e.nix"), "-A", attr).strip()
    shown = json.loads(run("nix", "show-derivation", path))[path]
    drv = read_derivation(path)
    assert drv_module._parse_fast(Path(path).read_text(encoding="utf-8")) is not None
    assert drv.input_srcs == tuple(shown["inputSrcs"])
    assert drv.input_drvs == {k: tuple(v) for k, v in shown["inputDrvs"].items()}
    assert (drv.system, drv.builder, list(drv.args), drv.env) == (
        shown["system"],
        shown["builder"],
        shown["args"],
        shown["env"],
    )
    for name, output in shown["outputs"].items():
        ours = drv.outputs[name]
        assert ours.path == output["path"]
        assert (ours.hash_algo, ours.hash) == (output.get("hashAlgo", ""), output.get("hash", ""))
    assert list(drv.outputs) == list(shown["outputs"])
