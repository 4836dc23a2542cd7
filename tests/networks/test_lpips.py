"""LPIPS-VGG: parity with the reference package, strict loading, the zoo entries, inversion."""

from __future__ import annotations

import ast
import hashlib
import pickle
import re
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from helpers import tiny_generator
from micromotion import hub as zoo
from micromotion.errors import DownloadError, MicromotionError
from micromotion.hub import Zoo
from micromotion.inversion import InversionConfig, invert
from micromotion.networks.lpips import LPIPS, VGG16Features, perceptual_loss
from micromotion.weights.lpips import LIN_ENTRY, VGG16_ENTRY, load_lpips, lpips_available

TINY = (4, 6, 8, 8, 8)  # narrow trunk widths: a fast, random LPIPS for behaviour tests


def tiny_lpips(seed: int = 0) -> LPIPS:
    torch.manual_seed(seed)
    return LPIPS(channels=TINY)


def images(n: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1  # [N, 3, size, size] in [-1, 1]


def one_line_naming(exc: BaseException, path: Path) -> str:
    message = str(exc)
    assert "\n" not in message and str(path) in message, message
    return message


def lpips_package_file() -> Path:
    lpips_pkg = pytest.importorskip("lpips")
    return Path(lpips_pkg.__file__).parent / "weights" / "v0.1" / "vgg.pth"


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory) -> Path:
    """A random full-width VGG16 trunk saved in torchvision's key layout (59 MB)."""
    torch.manual_seed(1)
    state = {k.removeprefix("vgg."): v for k, v in LPIPS().state_dict().items() if "vgg." in k}
    path = tmp_path_factory.mktemp("vgg") / "vgg16-random.pth"
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def lin_file(tmp_path_factory) -> Path:
    """Random non-negative linear layers in the layout of lpips/weights/v0.1/vgg.pth."""
    g = torch.Generator().manual_seed(2)
    state = {
        f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=g)
        for k, c in enumerate((64, 128, 256, 512, 512))
    }
    path = tmp_path_factory.mktemp("lin") / "lin.pth"
    torch.save(state, path)
    return path


# ---------------------------------------------------------------------------------------------
# Parity with the reference implementation (the PyPI lpips package).


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The lpips package's LPIPS-VGG, fully random, and ours loaded from files of its weights."""
    lpips_pkg = pytest.importorskip("lpips")
    torch.manual_seed(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's deprecation of `pretrained=`
        # pretrained=False: no calibrated linear layers; pnet_rand=True: no ImageNet download.
        ref = lpips_pkg.LPIPS(net="vgg", pretrained=False, pnet_rand=True, verbose=False)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for lin in ref.lins:
            w = lin.model[-1].weight
            w.copy_(torch.rand(w.shape, generator=g))  # LPIPS's linear weights are >= 0
    state = ref.state_dict()
    # The reference slices torchvision's vgg16().features, keeping the indices as names.
    features = {
        "features." + k.split(".", 2)[2]: v for k, v in state.items() if k.startswith("net.slice")
    }
    lins = {k: v for k, v in state.items() if k.startswith("lin") and k[3].isdigit()}
    folder = tmp_path_factory.mktemp("reference")
    torch.save(features, folder / "vgg16.pth")
    torch.save(lins, folder / "vgg.pth")
    ours = load_lpips(vgg_path=folder / "vgg16.pth", lin_path=folder / "vgg.pth")
    return ref.eval(), ours


@pytest.mark.parametrize("shape", [(3, 64, 64), (2, 48, 80)])
def test_parity_values_and_gradients(reference, shape):
    ref, ours = reference
    n, h, w = shape
    g = torch.Generator().manual_seed(5)
    x = torch.rand(n, 3, h, w, generator=g) * 2 - 1
    y = torch.rand(n, 3, h, w, generator=g) * 2 - 1
    x_ref, x_ours = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    expected = ref(x_ref, y).flatten()  # [N, 1, 1, 1] -> [N]
    actual = ours(x_ours, y)
    assert actual.shape == (n,)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=0)
    expected.sum().backward()
    actual.sum().backward()
    scale = x_ref.grad.abs().max()
    assert scale > 0
    torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-4, atol=1e-5 * scale)


def test_published_linear_weights_load_strictly(vgg_file):
    """The lpips package's own v0.1/vgg.pth (a legacy, CUDA-tagged pickle) loads as is."""
    package_file = lpips_package_file()
    model = load_lpips(vgg_path=vgg_file, lin_path=package_file)
    published = torch.load(package_file, map_location="cpu", weights_only=True)
    for k, head in enumerate(model.heads):
        assert torch.equal(head.model[1].weight, published[f"lin{k}.model.1.weight"])
    # The zoo entry's hash is that of the file the package ships.
    digest = hashlib.sha256(package_file.read_bytes()).hexdigest()
    assert digest == zoo.get(LIN_ENTRY).sha256


def test_own_implementation_imports_neither_reference():
    import micromotion.networks.lpips as ours

    tree = ast.parse(Path(ours.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not {m for m in imported if m.split(".")[0] in ("lpips", "torchvision")}


def test_state_dict_layout_matches_torchvision():
    """Our trunk's keys and shapes are those of torchvision's vgg16().features."""
    tv = pytest.importorskip("torchvision")
    with torch.device("meta"):  # shapes only: no 528 MB of random weights
        reference_state = tv.models.vgg16().state_dict()
    ours = VGG16Features().state_dict()
    features = {k: v.shape for k, v in reference_state.items() if k.startswith("features.")}
    assert {k: v.shape for k, v in ours.items()} == features
    classifier = {k for k in reference_state if not k.startswith("features.")}
    from micromotion.weights.lpips import _TORCHVISION_CLASSIFIER

    assert classifier == _TORCHVISION_CLASSIFIER
    assert VGG16Features().taps == (3, 8, 15, 22, 29)  # relu1_2 ... relu5_3


def test_full_torchvision_checkpoint_is_accepted(vgg_file, lin_file, tmp_path):
    """A whole vgg16() state dict loads: the classifier is recognised and dropped."""
    state = torch.load(vgg_file, weights_only=True)
    full = dict(state)
    for i, (out, inp) in enumerate([(8, 6), (8, 8), (5, 8)]):  # small stand-ins, same keys
        full[f"classifier.{3 * i}.weight"] = torch.zeros(out, inp)
        full[f"classifier.{3 * i}.bias"] = torch.zeros(out)
    path = tmp_path / "vgg16-full.pth"
    torch.save(full, path)
    model = load_lpips(vgg_path=path, lin_path=lin_file)
    assert torch.equal(model.vgg.features[28].weight, state["features.28.weight"])
    assert not any("classifier" in k for k in model.state_dict())


# ---------------------------------------------------------------------------------------------
# The metric's behaviour.


def test_frozen_and_input_checks():
    model = tiny_lpips()
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert all((head.model[1].weight >= 0).all() for head in model.heads)
    x = images(2, 32, 0)
    with pytest.raises(ValueError, match="differ in shape"):
        model(x, x[:1])
    with pytest.raises(ValueError, match=r"must be \[N, 3, H, W\]"):
        model(x[:, :1], x[:, :1])
    with pytest.raises(ValueError, match="at least 16x16"):
        model(x[..., :8, :8], x[..., :8, :8])


def test_zero_positive_symmetric():
    model = tiny_lpips()
    x, y = images(3, 32, 0), images(3, 32, 1)
    with torch.no_grad():
        assert torch.equal(model(x, x), torch.zeros(3))
        d_xy, d_yx = model(x, y), model(y, x)
        assert (d_xy > 0).all()
        torch.testing.assert_close(d_xy, d_yx, rtol=1e-6, atol=0)
        # One image per row: the batch gives each pair its own distance.
        torch.testing.assert_close(model(x[1:2], y[1:2]), d_xy[1:2], rtol=1e-5, atol=0)


def test_perceptual_loss_downsamples_large_images():
    model = tiny_lpips()
    x, y = images(2, 64, 0), images(2, 64, 1)
    with torch.no_grad():
        loss = perceptual_loss(model, resolution=32)
        # x2 area-downsampling is 2x2 average pooling.
        expected = model(F.avg_pool2d(x, 2), F.avg_pool2d(y, 2))
        torch.testing.assert_close(loss(x, y), expected, rtol=1e-6, atol=0)
        # At or below the resolution, images are used as they are.
        torch.testing.assert_close(perceptual_loss(model, resolution=64)(x, y), model(x, y))


def test_perceptual_loss_default_is_256_px_and_keeps_gradients():
    model = tiny_lpips()
    x = images(1, 512, 0).requires_grad_(True)
    y = images(1, 512, 1)
    loss = perceptual_loss(model)(x, y)
    with torch.no_grad():
        expected = model(F.avg_pool2d(x, 2), F.avg_pool2d(y, 2))
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-6, atol=0)
    loss.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not any(p.grad is not None for p in model.parameters())


def test_target_features_are_cached_but_never_stale():
    model = tiny_lpips()
    loss = perceptual_loss(model)
    x, y = images(2, 32, 0), images(2, 32, 1)
    with torch.no_grad():
        first, again = loss(x, y), loss(x, y)
        assert torch.equal(first, again)
        torch.testing.assert_close(first, model(x, y), rtol=1e-6, atol=0)
        y.mul_(0.5)  # the same tensor, changed in place
        torch.testing.assert_close(loss(x, y), model(x, y), rtol=1e-6, atol=0)
        other = images(2, 32, 2)
        torch.testing.assert_close(loss(x, other), model(x, other), rtol=1e-6, atol=0)


def test_inversion_with_lpips_lowers_the_loss():
    G = tiny_generator(0)  # 32 px
    model = tiny_lpips()
    g = torch.Generator().manual_seed(6)
    with torch.no_grad():
        ws = G.mapping(torch.randn(1, G.z_dim, generator=g), truncation_psi=0.7)
        target = G.synthesis(ws)  # [1, 3, 32, 32]
        start = G.synthesis(G.w_avg.expand(1, G.num_ws, -1))
        before = model(start, target)
    result = invert(
        G,
        target,
        config=InversionConfig(steps=25, w_avg_samples=500),
        loss_fn=perceptual_loss(model),
    )
    with torch.no_grad():
        after = model(result.images, target)
    assert len(result.losses) == 25
    assert after < 0.7 * before, (float(before), float(after))
    assert result.losses[-1] < result.losses[0]


# ---------------------------------------------------------------------------------------------
# Strict, safe loading: one line naming the file.


def save(path: Path, obj) -> Path:
    torch.save(obj, path)
    return path


def test_wrong_keys(vgg_file, lin_file, tmp_path):
    lins = torch.load(lin_file, weights_only=True)
    renamed = {k.replace("model.1", "model.0"): v for k, v in lins.items()}
    path = save(tmp_path / "renamed.pth", renamed)
    with pytest.raises(MicromotionError) as info:
        load_lpips(vgg_path=vgg_file, lin_path=path)
    message = one_line_naming(info.value, path)
    assert "LPIPS v0.1 VGG linear weights" in message
    assert "missing keys: lin0.model.1.weight, lin1.model.1.weight, lin2.model.1.weight" in message
    assert "and 2 more" in message and "unexpected keys: lin0.model.0.weight" in message

    vgg = torch.load(vgg_file, weights_only=True)
    del vgg["features.28.bias"]
    vgg["features.30.weight"] = torch.zeros(1)
    path = save(tmp_path / "vgg.pth", vgg)
    with pytest.raises(MicromotionError) as info:
        load_lpips(vgg_path=path, lin_path=lin_file)
    message = one_line_naming(info.value, path)
    assert "missing keys: features.28.bias; unexpected keys: features.30.weight" in message


def test_wrong_shapes_dtypes_and_values(vgg_file, lin_file, tmp_path):
    lins = torch.load(lin_file, weights_only=True)
    cases = {
        "shape": ({"lin2.model.1.weight": torch.rand(1, 128, 1, 1)}, "has shape [1, 128, 1, 1]"),
        "dtype": ({"lin0.model.1.weight": torch.ones(1, 64, 1, 1, dtype=torch.int64)}, "int64"),
        "nan": ({"lin4.model.1.weight": torch.full((1, 512, 1, 1), float("nan"))}, "NaN"),
        "negative": ({"lin1.model.1.weight": -torch.rand(1, 128, 1, 1)}, "negative weights"),
    }
    for name, (change, text) in cases.items():
        path = save(tmp_path / f"{name}.pth", {**lins, **change})
        with pytest.raises(MicromotionError, match=re.escape(text)) as info:
            load_lpips(vgg_path=vgg_file, lin_path=path)
        one_line_naming(info.value, path)
    narrow = {k.removeprefix("vgg."): v for k, v in tiny_lpips().state_dict().items() if "vgg" in k}
    path = save(tmp_path / "narrow.pth", narrow)
    with pytest.raises(MicromotionError, match=r"features.0.weight has shape \[4, 3, 3, 3\]"):
        load_lpips(vgg_path=path, lin_path=lin_file)


@pytest.mark.parametrize(
    ("obj", "text"),
    [
        ([torch.zeros(1)], "expected a dict of tensors, got list"),
        (torch.zeros(1), "expected a dict of tensors, got Tensor"),
        ({"lin0.model.1.weight": "weights"}, "entry 'lin0.model.1.weight' is a str"),
        ({"lin0.model.1.weight": {"nested": torch.zeros(1)}}, "is a dict, not a tensor"),
    ],
)
def test_not_a_state_dict_of_tensors(vgg_file, tmp_path, obj, text):
    path = save(tmp_path / "odd.pth", obj)
    with pytest.raises(MicromotionError, match=text) as info:
        load_lpips(vgg_path=vgg_file, lin_path=path)
    one_line_naming(info.value, path)


class RunsCode:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_malicious_pickle_is_refused(vgg_file, tmp_path, writer):
    marker = tmp_path / "code-ran"
    payload = {"lin0.model.1.weight": RunsCode(marker)}
    path = tmp_path / "evil.pth"
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(MicromotionError, match="refused to load") as info:
        load_lpips(vgg_path=vgg_file, lin_path=path)
    assert "open" in one_line_naming(info.value, path)  # names what it would have imported
    assert not marker.exists()


def test_unreadable_files(vgg_file, lin_file, tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all\n" * 10)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(lin_file.read_bytes()[:500])
    for path in (garbage, truncated, tmp_path / "empty.pth"):
        path.touch()
        with pytest.raises(MicromotionError, match="damaged, or not a PyTorch weights") as info:
            load_lpips(vgg_path=vgg_file, lin_path=path)
        one_line_naming(info.value, path)
    with pytest.raises(MicromotionError, match="no such file"):
        load_lpips(vgg_path=tmp_path / "missing.pth", lin_path=lin_file)
    with pytest.raises(MicromotionError, match="is a directory"):
        load_lpips(vgg_path=tmp_path, lin_path=lin_file)


# ---------------------------------------------------------------------------------------------
# The zoo.


def test_zoo_entries():
    vgg, lin = zoo.get(VGG16_ENTRY, kind="lpips"), zoo.get(LIN_ENTRY, kind="lpips")
    assert zoo.DEFAULT_ZOO.names(kind="lpips") == [VGG16_ENTRY, LIN_ENTRY]
    assert vgg.urls == ("https://download.pytorch.org/models/vgg16-397923af.pth",)
    assert vgg.filename == "vgg16-397923af.pth"
    # torchvision publishes the start of the sha256 in the file name.
    assert vgg.sha256 is not None and vgg.sha256.startswith("397923af")
    assert vgg.license == "BSD-3-Clause (torchvision)" and "torchvision" in vgg.origin
    raw = "richzhang/PerceptualSimilarity/master/lpips/weights/v0.1/vgg.pth"
    assert lin.urls == (
        f"https://raw.githubusercontent.com/{raw}",
        f"https://github.com/{raw.replace('/master/', '/raw/master/')}",
    )
    assert lin.sha256 == "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868"
    assert lin.license == "BSD-2-Clause" and "Zhang" in lin.origin


def serve_lpips(http_server, vgg_file: Path, lin_bytes: bytes) -> Zoo:
    """A registry copy whose two LPIPS entries download from ``http_server``."""
    http_server.files["/vgg16.pth"] = vgg_file.read_bytes()
    http_server.files["/vgg.pth"] = lin_bytes
    vgg = replace(
        zoo.get(VGG16_ENTRY),
        urls=(http_server.url("/vgg16.pth"),),
        sha256=hashlib.sha256(http_server.files["/vgg16.pth"]).hexdigest(),
    )
    lin = replace(zoo.get(LIN_ENTRY), urls=(http_server.url("/vgg.pth"),))
    if hashlib.sha256(lin_bytes).hexdigest() != lin.sha256:
        lin = replace(lin, sha256=hashlib.sha256(lin_bytes).hexdigest())
    return Zoo([vgg, lin])


def test_load_through_the_zoo(http_server, vgg_file):
    """The real LPIPS entry with its real hash, served locally; fetched once, then cached."""
    registry = serve_lpips(http_server, vgg_file, lpips_package_file().read_bytes())
    assert registry.get(LIN_ENTRY).sha256 == zoo.get(LIN_ENTRY).sha256  # the real one
    assert not lpips_available(registry=registry)
    model = load_lpips(registry=registry, progress=False)
    assert lpips_available(registry=registry)
    assert zoo.cache_path(registry.get(LIN_ENTRY)).name == "lpips-vgg-v0.1.pth"
    again = load_lpips(registry=registry, progress=False)
    assert http_server.hits == ["/vgg.pth", "/vgg16.pth"]  # the second load used the cache
    x, y = images(1, 32, 0), images(1, 32, 1)
    with torch.no_grad():
        assert torch.equal(model(x, y), again(x, y))


def test_lpips_available_needs_both_files(http_server, vgg_file, lin_file):
    registry = serve_lpips(http_server, vgg_file, lin_file.read_bytes())
    assert not lpips_available() and not lpips_available(registry=registry)
    assert not lpips_available(registry=Zoo())  # a registry without the entries
    zoo.fetch(LIN_ENTRY, registry=registry, progress=False)
    assert not lpips_available(registry=registry)
    zoo.fetch(VGG16_ENTRY, registry=registry, progress=False)
    assert lpips_available(registry=registry)
    assert http_server.hits == ["/vgg.pth", "/vgg16.pth"]  # only downloads that were asked for


def test_offline_gives_the_zoos_one_line_error(closed_port, default_zoo, vgg_file):
    url = f"http://127.0.0.1:{closed_port}/vgg.pth"
    entry = default_zoo.unregister(LIN_ENTRY)
    default_zoo.register(replace(entry, urls=(url,)))
    with pytest.raises(DownloadError) as info:
        load_lpips(vgg_path=vgg_file, progress=False)
    message = str(info.value)
    dest = zoo.home() / "zoo" / LIN_ENTRY / "lpips-vgg-v0.1.pth"
    assert "\n" not in message
    assert message.startswith(f"could not download {LIN_ENTRY} from {url} (")
    assert message.endswith(f"Download it yourself and save it as {dest}")
