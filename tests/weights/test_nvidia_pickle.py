"""NVIDIA .pkl networks read as data: round trips, snapshots, malicious and broken files."""

from __future__ import annotations

import hashlib
import io
import pickle
import random

import pytest
import torch

from micromotion.errors import CheckpointError
from micromotion.weights.formats.nvidia_pickle import (
    PersistentRecord,
    load_nvidia_generator_record,
    read_nvidia_pickle,
)
from nvidia_pkl_writer import (
    PLACEHOLDER_MODULE_SRC,
    NetSpec,
    generator_module_classes,
    nvidia_pickle_bytes,
    write_nvidia_pickle,
)

Z_DIM, W_DIM = 6, 5
CHANNELS = {4: 8, 8: 6}


def _fir() -> torch.Tensor:
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = torch.outer(f, f)
    return f / f.sum()


def tiny_generator_sd(seed: int = 0) -> dict[str, torch.Tensor]:
    """An 8 px generator's flat state dict in NVIDIA's names and order, with odd dtypes."""
    gen = torch.Generator().manual_seed(seed)

    def rnd(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=gen)

    sd: dict[str, torch.Tensor] = {}
    for res, ch in CHANNELS.items():
        b = f"synthesis.b{res}"
        if res == 4:
            sd[f"{b}.const"] = rnd(ch, 4, 4)
        sd[f"{b}.resample_filter"] = _fir()
        for conv in ("conv1",) if res == 4 else ("conv0", "conv1"):
            cin = CHANNELS[res // 2] if conv == "conv0" else ch
            sd[f"{b}.{conv}.weight"] = rnd(ch, cin, 3, 3)
            sd[f"{b}.{conv}.noise_strength"] = rnd()
            sd[f"{b}.{conv}.bias"] = rnd(ch)
            sd[f"{b}.{conv}.resample_filter"] = _fir()
            sd[f"{b}.{conv}.noise_const"] = rnd(res, res)
            sd[f"{b}.{conv}.affine.weight"] = rnd(cin, W_DIM)
            sd[f"{b}.{conv}.affine.bias"] = rnd(cin)
        sd[f"{b}.torgb.weight"] = rnd(3, ch, 1, 1)
        sd[f"{b}.torgb.bias"] = rnd(3)
        sd[f"{b}.torgb.affine.weight"] = rnd(ch, W_DIM)
        sd[f"{b}.torgb.affine.bias"] = rnd(ch)
    sd["mapping.w_avg"] = rnd(W_DIM)
    sd["mapping.fc0.weight"] = rnd(W_DIM, Z_DIM)
    sd["mapping.fc0.bias"] = rnd(W_DIM)
    sd["mapping.fc1.weight"] = rnd(W_DIM, W_DIM)
    sd["mapping.fc1.bias"] = rnd(W_DIM)
    # Dtypes other than float32 must survive as they are, for a buffer and a parameter.
    sd["synthesis.b8.conv1.noise_const"] = sd["synthesis.b8.conv1.noise_const"].half()
    sd["synthesis.b8.torgb.bias"] = sd["synthesis.b8.torgb.bias"].half()
    return sd


INIT_KWARGS = {
    "z_dim": Z_DIM,
    "c_dim": 0,
    "w_dim": W_DIM,
    "img_resolution": 8,
    "img_channels": 3,
    "mapping_kwargs": {"num_layers": 2},
    "synthesis_kwargs": {
        "channel_base": 64,
        "channel_max": 8,
        "num_fp16_res": 0,
        "conv_clamp": 256,
    },
}


def generator_spec(seed: int = 0, **overrides) -> NetSpec:
    sd = tiny_generator_sd(seed)
    fields = dict(
        class_name="Generator",
        init_kwargs=INIT_KWARGS,
        state_dict=sd,
        module_classes=generator_module_classes(sd),
        submodule_kwargs={"mapping": {"z_dim": Z_DIM, "c_dim": 0, "w_dim": W_DIM, "num_ws": 6}},
        attributes={"": {"z_dim": Z_DIM, "num_ws": 6}},
    )
    fields.update(overrides)
    return NetSpec(**fields)


def discriminator_spec() -> NetSpec:
    gen = torch.Generator().manual_seed(7)
    sd = {
        "b8.resample_filter": _fir(),
        "b8.fromrgb.weight": torch.randn(4, 3, 1, 1, generator=gen),
        "b8.fromrgb.bias": torch.randn(4, generator=gen),
        "b8.fromrgb.resample_filter": _fir(),
        "b4.conv.weight": torch.randn(4, 5, 3, 3, generator=gen),
        "b4.conv.bias": torch.randn(4, generator=gen),
        "b4.conv.resample_filter": _fir(),
        "b4.fc.weight": torch.randn(4, 64, generator=gen),
        "b4.fc.bias": torch.randn(4, generator=gen),
        "b4.out.weight": torch.randn(1, 4, generator=gen),
        "b4.out.bias": torch.randn(1, generator=gen),
    }
    return NetSpec(
        class_name="Discriminator",
        init_kwargs={"c_dim": 0, "img_resolution": 8, "epilogue_kwargs": {"mbstd_group_size": 4}},
        state_dict=sd,
        module_classes={
            "b8": "DiscriminatorBlock",
            "b8.fromrgb": "Conv2dLayer",
            "b4": "DiscriminatorEpilogue",
            "b4.mbstd": "MinibatchStdLayer",  # no tensors, still a child
            "b4.conv": "Conv2dLayer",
            "b4.fc": "FullyConnectedLayer",
            "b4.out": "FullyConnectedLayer",
        },
    )


def augment_spec() -> NetSpec:
    return NetSpec(
        class_name="AugmentPipe",
        init_kwargs={"xflip": 1, "rotate90": 1, "imgfilter_bands": [1, 1, 1, 1]},
        state_dict={"p": torch.tensor(0.25), "Hz_geom": torch.randn(12)},
    )


def assert_one_line_naming(exc: pytest.ExceptionInfo, path) -> str:
    message = str(exc.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------------------------
# Round trips.


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_generator_round_trip(tmp_path, protocol):
    spec = generator_spec()
    path = write_nvidia_pickle(tmp_path / "g.pkl", {"G_ema": spec}, protocol=protocol)
    record = load_nvidia_generator_record(path)

    sd = record.state_dict()
    assert list(sd) == list(spec.state_dict)  # same keys, in NVIDIA's order
    for name, tensor in spec.state_dict.items():
        assert sd[name].dtype == tensor.dtype, name
        assert torch.equal(sd[name], tensor), name
        assert not sd[name].requires_grad and type(sd[name]) is torch.Tensor
    assert sd["synthesis.b8.conv1.noise_const"].dtype == torch.float16

    assert record.class_name == "Generator"
    assert record.init_kwargs == INIT_KWARGS
    # The writer stores nested kwargs as dnnlib EasyDicts, as NVIDIA's train.py makes them.
    assert type(record.init_kwargs["mapping_kwargs"]) is dict
    assert record.init_args == ()
    assert record.attributes == {"z_dim": Z_DIM, "num_ws": 6}
    assert record.module_src_sha256 == hashlib.sha256(PLACEHOLDER_MODULE_SRC.encode()).hexdigest()
    assert not record.is_stylegan3_generator()

    # Parameters and buffers land where NVIDIA registers them.
    layer = record.get_record("synthesis.b8.conv1")
    assert layer is not None and layer.class_name == "SynthesisLayer"
    assert list(layer.parameters) == ["weight", "noise_strength", "bias"]
    assert list(layer.buffers) == ["resample_filter", "noise_const"]
    mapping = record.children["mapping"]
    assert mapping.class_name == "MappingNetwork" and list(mapping.buffers) == ["w_avg"]
    assert mapping.init_kwargs == {"z_dim": Z_DIM, "c_dim": 0, "w_dim": W_DIM, "num_ws": 6}
    assert record.get_record("synthesis.b8.torgb.affine").class_name == "FullyConnectedLayer"
    assert record.get_record("synthesis.nope") is None
    assert [p for p, _ in record.named_records()][:3] == ["", "synthesis", "synthesis.b4"]


def test_non_persistent_buffers_are_kept_out_of_state_dict(tmp_path):
    extra = torch.arange(3.0)
    spec = generator_spec(non_persistent_buffers={"synthesis.b4.scratch": extra})
    record = load_nvidia_generator_record(write_nvidia_pickle(tmp_path / "g.pkl", {"G_ema": spec}))
    block = record.get_record("synthesis.b4")
    assert torch.equal(block.buffers["scratch"], extra)
    assert block.non_persistent_buffers == frozenset({"scratch"})
    assert "synthesis.b4.scratch" not in record.state_dict()
    assert set(record.state_dict()) == set(spec.state_dict)


def test_training_snapshot(tmp_path):
    training_set_kwargs = {"class_name": "training.dataset.ImageFolderDataset", "resolution": 8}
    networks = {
        "G": generator_spec(seed=1),
        "D": discriminator_spec(),
        "G_ema": generator_spec(seed=2),
        "augment_pipe": augment_spec(),
    }
    path = write_nvidia_pickle(
        tmp_path / "network-snapshot-000000.pkl",
        networks,
        extra={"training_set_kwargs": training_set_kwargs},
    )
    data = read_nvidia_pickle(path)
    assert list(data) == ["G", "D", "G_ema", "augment_pipe", "training_set_kwargs"]
    assert data["training_set_kwargs"] == training_set_kwargs
    for key in ("G", "D", "G_ema", "augment_pipe"):
        assert isinstance(data[key], PersistentRecord)
        sd = data[key].state_dict()
        assert list(sd) == list(networks[key].state_dict)
        assert all(torch.equal(sd[k], v) for k, v in networks[key].state_dict.items())

    D = data["D"]
    assert D.class_name == "Discriminator"
    assert list(D.children["b4"].children) == ["mbstd", "conv", "fc", "out"]
    assert D.get_record("b4.mbstd").class_name == "MinibatchStdLayer"
    assert D.init_kwargs["epilogue_kwargs"] == {"mbstd_group_size": 4}
    pipe = data["augment_pipe"]
    assert pipe.class_name == "AugmentPipe" and list(pipe.buffers) == ["p", "Hz_geom"]
    assert pipe.init_kwargs["imgfilter_bands"] == [1, 1, 1, 1]
    # The generator entry picked by default is G_ema, not G.
    G_ema = load_nvidia_generator_record(path)
    assert torch.equal(
        G_ema.state_dict()["mapping.w_avg"], networks["G_ema"].state_dict["mapping.w_avg"]
    )
    G = load_nvidia_generator_record(path, key="G")
    assert torch.equal(G.state_dict()["mapping.w_avg"], networks["G"].state_dict["mapping.w_avg"])


def test_snapshot_without_augment_pipe(tmp_path):
    path = write_nvidia_pickle(
        tmp_path / "s.pkl", {"G_ema": generator_spec(), "augment_pipe": None}, protocol=3
    )
    data = read_nvidia_pickle(path)
    assert data["augment_pipe"] is None


def test_plain_torch_containers_and_numpy_values_are_data(tmp_path):
    import numpy as np

    payload = {
        "seq": torch.nn.ModuleList([]),
        "arr": np.arange(6, dtype=np.float32).reshape(2, 3),
        "gain": np.float64(0.5),
    }
    path = tmp_path / "misc.pkl"
    path.write_bytes(pickle.dumps(payload, protocol=4))
    data = read_nvidia_pickle(path)
    assert data["seq"].class_name == "ModuleList" and data["seq"].module_src_sha256 is None
    np.testing.assert_array_equal(data["arr"], payload["arr"])
    assert data["gain"] == 0.5 and type(data["gain"]) is float


# ---------------------------------------------------------------------------------------------
# StyleGAN3 and other unsupported contents.


def test_stylegan3_generator_is_refused(tmp_path):
    gen = torch.Generator().manual_seed(3)
    sd = {
        "synthesis.input.weight": torch.randn(4, 4, generator=gen),
        "synthesis.input.affine.weight": torch.randn(4, W_DIM, generator=gen),
        "synthesis.input.affine.bias": torch.randn(4, generator=gen),
        "synthesis.input.transform": torch.eye(3),
        "synthesis.input.freqs": torch.randn(4, 2, generator=gen),
        "synthesis.input.phases": torch.randn(4, generator=gen),
        "synthesis.L0_36_4.weight": torch.randn(4, 4, 3, 3, generator=gen),
        "synthesis.L0_36_4.magnitude_ema": torch.ones(()),
        "mapping.w_avg": torch.zeros(W_DIM),
    }
    spec = NetSpec(
        class_name="Generator",
        init_kwargs={"z_dim": Z_DIM, "w_dim": W_DIM, "img_resolution": 16, "conv_kernel": 1},
        state_dict=sd,
        module_classes={
            "synthesis": "SynthesisNetwork",
            "synthesis.input": "SynthesisInput",
            "synthesis.input.affine": "FullyConnectedLayer",
            "synthesis.L0_36_4": "SynthesisLayer",
            "mapping": "MappingNetwork",
        },
    )
    path = write_nvidia_pickle(tmp_path / "sg3.pkl", {"G_ema": spec})
    assert read_nvidia_pickle(path)["G_ema"].is_stylegan3_generator()
    with pytest.raises(CheckpointError) as exc:
        load_nvidia_generator_record(path)
    assert assert_one_line_naming(exc, path).endswith(
        "StyleGAN3 (alias-free) generators are not supported yet"
    )


def test_missing_g_ema_is_not_replaced_by_g(tmp_path):
    path = write_nvidia_pickle(
        tmp_path / "g.pkl", {"G": generator_spec(), "D": discriminator_spec()}
    )
    with pytest.raises(CheckpointError) as exc:
        load_nvidia_generator_record(path)
    assert assert_one_line_naming(exc, path).endswith("no G_ema network in the pickle (keys: D, G)")


def test_g_ema_that_is_not_a_network(tmp_path):
    path = tmp_path / "g.pkl"
    path.write_bytes(pickle.dumps({"G_ema": None}))
    with pytest.raises(CheckpointError, match="G_ema is NoneType, not a network"):
        load_nvidia_generator_record(path)


# ---------------------------------------------------------------------------------------------
# Malicious pickles: refused, and nothing runs.


def _proto4_call(module: str, name: str, arg: str) -> bytes:
    """``module.name(arg)`` as protocol-4 opcodes."""

    def text(s: str) -> bytes:
        raw = s.encode()
        return pickle.SHORT_BINUNICODE + bytes([len(raw)]) + raw

    return (
        pickle.PROTO + b"\x04"
        + text(module) + text(name) + pickle.STACK_GLOBAL
        + text(arg) + pickle.TUPLE1 + pickle.REDUCE
        + pickle.STOP
    )  # fmt: skip


@pytest.mark.parametrize(
    ("make", "refused"),
    [
        (lambda m: b"cos\nsystem\n(V" + f"touch {m}".encode() + b"\ntR.", "os.system"),
        (lambda m: _proto4_call("builtins", "eval", f"open({str(m)!r}, 'w')"), "builtins.eval"),
        (lambda m: _proto4_call("builtins", "exec", f"open({str(m)!r}, 'w')"), "builtins.exec"),
        (lambda m: _proto4_call("subprocess", "getoutput", f"touch {m}"), "subprocess.getoutput"),
        (lambda m: _proto4_call("posix", "system", f"touch {m}"), "posix.system"),
        # Nested inside an allowed container: the global is still checked.
        (
            lambda m: (
                b"ccollections\nOrderedDict\n)R}(Vx\ncos\nsystem\n(V"
                + f"touch {m}".encode()
                + b"\ntRu."
            ),
            "os.system",
        ),
    ],
)
def test_malicious_globals_are_refused_and_not_run(tmp_path, make, refused):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(make(marker))
    with pytest.raises(CheckpointError) as exc:
        read_nvidia_pickle(path)
    assert assert_one_line_naming(exc, path) == f"{path}: refuses to load {refused} (not data)"
    assert not marker.exists()


def test_embedded_module_source_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    src = f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
    path = write_nvidia_pickle(tmp_path / "g.pkl", {"G_ema": generator_spec(module_src=src)})
    record = load_nvidia_generator_record(path)
    assert record.module_src_sha256 == hashlib.sha256(src.encode()).hexdigest()
    assert not marker.exists()


def test_malicious_tensor_storage_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    # torch.storage._load_from_bytes(blob) where the blob's own pickle calls os.system.
    blob = b"\x80\x02cos\nsystem\nX" + len(f"touch {marker}").to_bytes(4, "little")
    blob += f"touch {marker}".encode() + b"\x85R."
    outer = (
        b"\x80\x04}\x8c\x01t\x8c\rtorch.storage\x8c\x10_load_from_bytes\x93B"
        + len(blob).to_bytes(4, "little")
        + blob
        + b"\x85Rs."
    )
    path = tmp_path / "evil.pkl"
    path.write_bytes(outer)
    with pytest.raises(CheckpointError, match="tensor storage that is not plain data") as exc:
        read_nvidia_pickle(path)
    assert_one_line_naming(exc, path)
    assert not marker.exists()


def test_non_container_torch_modules_are_refused(tmp_path):
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps({"m": torch.nn.Linear(2, 2)}))
    with pytest.raises(
        CheckpointError, match=r"refuses to load torch\.nn\.modules\.linear\.Linear"
    ):
        read_nvidia_pickle(path)


def test_tensorflow_era_pickle_is_named(tmp_path):
    path = tmp_path / "tf.pkl"
    path.write_bytes(b"cdnnlib.tflib.network\nNetwork\n)R.")
    with pytest.raises(CheckpointError, match="a TensorFlow-era StyleGAN2 pickle, not a PyTorch"):
        read_nvidia_pickle(path)


# ---------------------------------------------------------------------------------------------
# Broken files: one line naming the file.


def test_truncated_file(tmp_path):
    data = nvidia_pickle_bytes({"G_ema": generator_spec()})
    for cut in (1, 2, 100, len(data) // 2, len(data) - 1):
        path = tmp_path / f"cut{cut}.pkl"
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError) as exc:
            read_nvidia_pickle(path)
        assert_one_line_naming(exc, path)


def test_random_bytes(tmp_path):
    rng = random.Random(0)
    for i in range(20):
        path = tmp_path / f"random{i}.pkl"
        path.write_bytes(b"\x80\x04" + rng.randbytes(256) if i % 2 else rng.randbytes(256))
        with pytest.raises(CheckpointError) as exc:
            read_nvidia_pickle(path)
        assert_one_line_naming(exc, path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.pkl"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError) as exc:
        read_nvidia_pickle(path)
    assert "empty file" in assert_one_line_naming(exc, path)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.pkl"
    with pytest.raises(CheckpointError) as exc:
        load_nvidia_generator_record(path)
    assert assert_one_line_naming(exc, path) == f"{path}: no such file"


def test_pickled_list_instead_of_dict(tmp_path):
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(CheckpointError) as exc:
        read_nvidia_pickle(path)
    assert assert_one_line_naming(exc, path).endswith("got list")


def test_writer_requires_every_module_to_be_named():
    sd = tiny_generator_sd()
    classes = generator_module_classes(sd)
    del classes["synthesis.b4.conv1.affine"]
    with pytest.raises(ValueError, match=r"synthesis\.b4\.conv1\.affine"):
        nvidia_pickle_bytes({"G_ema": NetSpec("Generator", {}, sd, classes)})


def test_writer_output_is_a_plain_pickle():
    # The writer's globals are NVIDIA's names; nothing of ours leaks into the file.
    data = nvidia_pickle_bytes({"G_ema": generator_spec()})
    assert b"nvidia_pkl_writer" not in data and b"Stub" not in data
    for name in (b"torch_utils.persistence", b"_reconstruct_persistent_obj", b"dnnlib.util"):
        assert name in data


class _RewrittenRecord:
    """A persistent object followed by a BUILD that overwrites the record's fields."""

    def __init__(self, state):
        self.state = state

    def __reduce__(self):
        from nvidia_pkl_writer import _reconstruct_stub

        meta = {"type": "class", "version": 6, "module_src": "", "class_name": "G", "state": {}}
        return (_reconstruct_stub, (meta,), self.state)


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("cycle", "network me: a module that contains itself"),
        ({"parameters": {"w": "not a tensor"}}, "network <root>: malformed parameters"),
        ({"class_name": 5}, "network <root>: malformed record"),
    ],
)
def test_records_rewritten_after_construction_are_refused(tmp_path, state, message):
    from nvidia_pkl_writer import _Pickler

    obj = _RewrittenRecord(state)
    if state == "cycle":
        obj.state = {"children": {"me": obj}}
    buf = io.BytesIO()
    _Pickler(buf, 4).dump({"G_ema": obj})
    path = tmp_path / "rewritten.pkl"
    path.write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError) as exc:
        read_nvidia_pickle(path)
    assert assert_one_line_naming(exc, path) == f"{path}: {message}"
