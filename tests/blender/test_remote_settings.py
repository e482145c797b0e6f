"""Where a remote backend is: addresses as users type them, which are this computer, and the
Hugging Face token `hf auth login` saved, found where huggingface_hub looks for it."""

from __future__ import annotations

import pytest


@pytest.fixture
def settings(addon):
    return addon.client.remote_settings


@pytest.mark.parametrize(
    ("typed", "url"),
    [
        ("gpu-box:7860", "http://gpu-box:7860/"),
        (" http://10.0.0.5:7860/ ", "http://10.0.0.5:7860/"),
        ("https://studio.example/partpacker", "https://studio.example/partpacker/"),
    ],
)
def test_an_address_as_typed_becomes_the_apps_url(settings, typed, url):
    assert settings.server_settings(typed).url == url


@pytest.mark.parametrize("typed", ["", "ftp://gpu-box", "http://"])
def test_an_address_that_cannot_work_is_refused_with_an_example(addon, settings, typed):
    with pytest.raises(addon.client.BackendUnavailable) as refusal:
        settings.server_settings(typed)
    assert "http://gpu-box.studio.lan:7860" in refusal.value.hint


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:7860/", True),
        ("http://localhost:7860/", True),
        ("http://[::1]:7860/", True),
        ("http://127.0.0.2/", True),
        ("http://10.0.0.5:7860/", False),
        ("https://nvidia-partpacker.hf.space/", False),
    ],
)
def test_only_this_computer_counts_as_loopback(settings, url, loopback):
    assert settings.is_loopback(url) is loopback


def test_the_saved_token_is_found_where_hf_auth_login_puts_it(settings, tmp_path):
    home, cache, elsewhere = tmp_path / "home", tmp_path / "cache", tmp_path / "token.txt"
    home.mkdir()
    (home / "token").write_text("hf_home\n")
    (cache / "huggingface").mkdir(parents=True)
    (cache / "huggingface" / "token").write_text("hf_cache")
    elsewhere.write_text("hf_path")
    found = settings.saved_hf_token
    assert found({"XDG_CACHE_HOME": str(cache)}) == "hf_cache"
    assert found({"XDG_CACHE_HOME": str(cache), "HF_HOME": str(home)}) == "hf_home"
    assert found({"HF_HOME": str(home), "HF_TOKEN_PATH": str(elsewhere)}) == "hf_path"
    assert found({"HF_HOME": str(home), "HF_TOKEN": " hf_env "}) == "hf_env"
    assert found({"HF_HOME": str(tmp_path / "nothing")}) == ""


def test_a_server_gets_the_token_as_authorization_a_space_as_gradio_client_sends_it(settings):
    assert settings.server_settings("gpu-box", "t1").headers() == {"Authorization": "Bearer t1"}
    space = settings.space_settings("", "hf_x")
    assert space.space_id == "nvidia/PartPacker"
    assert space.headers() == {"X-HF-Authorization": "Bearer hf_x"}
    assert settings.server_settings("gpu-box").headers() == {}
