
import pytest

from sbomgen.errors import InputNotFoundError, NotInStoreError
from sbomgen.nix.storepath import default_state_dir, is_store_name, resolve_input

HASH = "5nyj4qnrzp73ww4bgqg3qk3imzq10fz7"


@pytest.fixture
def fake_store(tmp_path, monkeypatch):
    monkeypatch.delenv("NIX_STORE_DIR", raising=False)
    monkeypatch.delenv("NIX_STATE_DIR", raising=False)
    store = tmp_path / "store"
    (store / f"{HASH}-weather-0.0.1" / "bin").mkdir(parents=True)
    (store / f"{HASH}-weather-0.0.1" / "bin" / "weather").write_text("x")
    return store


def test_is_store_name():
    assert is_store_name(f"{HASH}-weather-0.0.1")
    assert is_store_name(f"{HASH}-x.drv")
    assert not is_store_name(f"{HASH}weather")
    assert not is_store_name("e" * 32 + "-x")  # 'e' is not in Nix's base32 alphabet
    assert not is_store_name(f"{HASH}-")


def test_result_symlink_and_inner_path(fake_store, tmp_path):
    link = tmp_path / "result"
    link.symlink_to(fake_store / f"{HASH}-weather-0.0.1")
    resolved = resolve_input(str(link))
    assert resolved.store_dir == str(fake_store)
    assert resolved.store_path == str(fake_store / f"{HASH}-weather-0.0.1")
    inner = resolve_input(str(link / "bin" / "weather"))
    assert inner.store_path == resolved.store_path


def test_store_dir_from_environment(fake_store, tmp_path, monkeypatch):
    monkeypatch.setenv("NIX_STORE_DIR", str(fake_store))
    assert resolve_input(str(fake_store / f"{HASH}-weather-0.0.1")).store_dir == str(fake_store)
    other = tmp_path / "elsewhere"
    other.mkdir()
    with pytest.raises(NotInStoreError, match="NIX_STORE_DIR"):
        resolve_input(str(other))


def test_dangling_and_missing(tmp_path):
    link = tmp_path / "result"
    link.symlink_to(tmp_path / "gone")
    with pytest.raises(InputNotFoundError, match="dangling symlink"):
        resolve_input(str(link))
    with pytest.raises(InputNotFoundError, match="no such file"):
        resolve_input(str(tmp_path / "nothing"))


def test_not_in_store(tmp_path, monkeypatch):
    monkeypatch.delenv("NIX_STORE_DIR", raising=False)
    with pytest.raises(NotInStoreError):
        resolve_input(str(tmp_path))


def test_default_state_dir(monkeypatch):
    monkeypatch.delenv("NIX_STATE_DIR", raising=False)
    assert default_state_dir("/nix/store") == "/nix/var/nix"
    monkeypatch.setenv("NIX_STATE_DIR", "/tmp/st/")
    assert default_state_dir("/nix/store") == "/tmp/st"
