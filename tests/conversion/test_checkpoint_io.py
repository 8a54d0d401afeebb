"""Reading checkpoints (containers, prefixes, formats) and the converter's errors."""

import collections
import json

import numpy as np
import pytest

from keras_pose.conversion.checkpoint_io import (
    list_keys,
    load_state_dict,
    read_checkpoint,
    strip_prefix,
    to_numpy,
    unwrap_state_dict,
)
from keras_pose.conversion.families import detect_family
from keras_pose.conversion.key_accountant import KeyAccountant
from keras_pose.errors import CheckpointError
from pose_testing.tiny_checkpoints import tiny_vitpose_state_dict, save_pth

torch = pytest.importorskip("torch")


def _sd():
    return collections.OrderedDict(
        [("a.weight", torch.arange(6, dtype=torch.float32).reshape(2, 3)), ("a.bias", torch.ones(2)),
         ("bn.num_batches_tracked", torch.tensor(5))]
    )


def _check_sd(tensors, prefix=""):
    assert list(tensors) == [prefix + "a.weight", prefix + "a.bias", prefix + "bn.num_batches_tracked"]
    np.testing.assert_array_equal(tensors[prefix + "a.weight"], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert isinstance(tensors[prefix + "a.bias"], np.ndarray)
    assert tensors[prefix + "a.bias"].dtype == np.float32
    assert tensors[prefix + "bn.num_batches_tracked"].dtype == np.int64


# ------------------------------------------------------------- containers
@pytest.mark.parametrize("zipfile", [True, False], ids=["zip", "legacy"])
@pytest.mark.parametrize(
    "container",
    ["bare", "state_dict", "meta_state_dict", "epoch_state_dict_optimizer", "model", "nested"],
)
def test_torch_containers(tmp_path, container, zipfile):
    sd = _sd()
    obj = {
        "bare": sd,
        "state_dict": {"state_dict": sd},
        "meta_state_dict": {"meta": {"epoch": 3, "CLASSES": ("person",), "config": "x=1"}, "state_dict": sd},
        "epoch_state_dict_optimizer": {
            "epoch": 140,
            "state_dict": sd,
            "optimizer": {"state": {0: {"momentum_buffer": torch.zeros(2)}}, "param_groups": [{"lr": 0.1}]},
            "best_acc": 0.7,
        },
        "model": {"model": sd},
        "nested": {"model": {"state_dict": sd}, "meta": {}},
    }[container]
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path, _use_new_zipfile_serialization=zipfile)
    ckpt = read_checkpoint(path)
    assert ckpt.format == "torch"
    _check_sd(ckpt.tensors)
    if container == "meta_state_dict":
        assert ckpt.container_keys == ["meta", "state_dict"]
        assert ckpt.meta["epoch"] == 3


def test_list_keys(tmp_path):
    from safetensors.torch import save_file

    sd = collections.OrderedDict((f"module.{k}", v) for k, v in _sd().items())
    for zipfile in (True, False):
        torch.save({"meta": {}, "state_dict": sd}, tmp_path / "k.pth", _use_new_zipfile_serialization=zipfile)
        assert list_keys(tmp_path / "k.pth") == ["a.weight", "a.bias", "bn.num_batches_tracked"]
    save_file({"x.weight": torch.zeros(2), "y": torch.ones(1)}, str(tmp_path / "k.safetensors"))
    assert sorted(list_keys(tmp_path / "k.safetensors")) == ["x.weight", "y"]


def test_dataparallel_prefix_is_removed(tmp_path):
    sd = collections.OrderedDict((f"module.{k}", v) for k, v in _sd().items())
    path = tmp_path / "dp.pth.tar"
    torch.save({"epoch": 1, "state_dict": sd, "optimizer": {}}, path)
    ckpt = read_checkpoint(path)
    assert ckpt.stripped_prefix == "module."
    _check_sd(ckpt.tensors)
    # only when every key has it
    mixed, prefix = strip_prefix({"module.a": 1, "b": 2})
    assert prefix == "" and set(mixed) == {"module.a", "b"}


def test_numpy_arrays_in_meta_are_allowed(tmp_path):
    # mmpose 1.x meta carries dataset_meta with NumPy arrays (sigmas).
    path = tmp_path / "np_meta.pth"
    meta = {"dataset_meta": {"sigmas": np.linspace(0.02, 0.1, 17), "num_keypoints": np.int64(17)}}
    torch.save({"meta": meta, "state_dict": _sd()}, path, _use_new_zipfile_serialization=False)
    ckpt = read_checkpoint(path)
    _check_sd(ckpt.tensors)
    assert ckpt.meta["dataset_meta"]["sigmas"].shape == (17,)


class _Opaque:  # a class torch.load(weights_only=True) must refuse
    pass


def test_arbitrary_objects_are_refused(tmp_path):
    path = tmp_path / "obj.pth"
    torch.save({"meta": {"thing": _Opaque()}, "state_dict": _sd()}, path)
    with pytest.raises(CheckpointError, match="weights_only"):
        read_checkpoint(path)


def test_half_precision_becomes_float32(tmp_path):
    path = tmp_path / "half.pth"
    torch.save({"w": torch.ones(3, dtype=torch.bfloat16), "h": torch.ones(2, dtype=torch.float16)}, path)
    tensors = load_state_dict(path)
    assert tensors["w"].dtype == np.float32 and tensors["h"].dtype == np.float32
    assert to_numpy(torch.ones(1, dtype=torch.bfloat16)).dtype == np.float32
    ml_dtypes = pytest.importorskip("ml_dtypes")  # safetensors' numpy bfloat16 once TF/JAX registered it
    assert to_numpy(np.ones(2, ml_dtypes.bfloat16)).dtype == np.float32


def test_safetensors_file_and_directory(tmp_path):
    from safetensors.torch import save_file

    directory = tmp_path / "hf"
    directory.mkdir()
    tensors = {k: v for k, v in _sd().items()}
    tensors["bf"] = torch.ones(4, dtype=torch.bfloat16)
    save_file(tensors, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps({"model_type": "vitpose", "use_simple_decoder": False}))
    for target in (directory, directory / "model.safetensors"):
        ckpt = read_checkpoint(target)
        assert ckpt.format == "safetensors"
        assert ckpt.config["model_type"] == "vitpose"
        np.testing.assert_array_equal(ckpt.tensors["a.weight"], np.arange(6, dtype=np.float32).reshape(2, 3))
        assert ckpt.tensors["bf"].dtype == np.float32
    # no config.json: config is None
    save_file({"x": torch.zeros(2)}, str(tmp_path / "alone.safetensors"))
    assert read_checkpoint(tmp_path / "alone.safetensors").config is None


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_checkpoint(tmp_path / "missing.pth")
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        read_checkpoint(empty)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"definitely not a checkpoint" * 10)
    with pytest.raises(CheckpointError):
        read_checkpoint(junk)
    no_tensors = tmp_path / "no_tensors.pth"
    torch.save({"epoch": 3, "meta": {}}, no_tensors)
    with pytest.raises(CheckpointError, match="no tensors"):
        read_checkpoint(no_tensors)
    with pytest.raises(CheckpointError):
        unwrap_state_dict([1, 2, 3])


# ------------------------------------------------------------- accountant
def test_key_accountant_lists_every_problem():
    tensors = {
        "backbone.blocks.0.attn.qkv.weight": np.zeros((96, 32), np.float32),
        "backbone.blocks.0.attn.qkv.bias": np.zeros((96,), np.float32),
        "backbone.extra.weight": np.zeros((3, 4), np.float32),
        "backbone.extra2.weight": np.zeros((5,), np.float32),
        "head.bn.num_batches_tracked": np.zeros((), np.int64),
        "backbone.cls_token": np.zeros((1, 1, 32), np.float32),
    }
    acc = KeyAccountant(tensors, "toy.pth", "vitpose", ignore=("*.num_batches_tracked", "backbone.cls_token"),
                        family_aliases=("vitpose_plus",))
    assert acc.pop("backbone.blocks.0.attn.qkv.weight", (96, 32)).shape == (96, 32)
    assert acc.pop("backbone.blocks.0.attn.qkv.bias", (64,)) is None  # misshapen
    assert acc.pop("backbone.blocks.0.norm1.weight", (32,)) is None  # missing
    assert acc.pop("backbone.blocks.0.norm1.bias", (32,)) is None  # missing
    assert acc.pop("backbone.optional", (1,), optional=True) is None
    assert not acc.ok
    with pytest.raises(CheckpointError) as info:
        acc.finish()
    message = str(info.value)
    assert "toy.pth" in message
    assert "missing (2)" in message
    assert "backbone.blocks.0.norm1.weight expected (32)" in message
    assert "backbone.blocks.0.norm1.bias expected (32)" in message
    assert "unexpected (2)" in message
    assert "backbone.extra.weight (3, 4)" in message and "backbone.extra2.weight (5)" in message
    assert "misshapen (1)" in message
    assert "backbone.blocks.0.attn.qkv.bias: checkpoint (96), model expects (64)" in message
    assert "num_batches_tracked" not in message and "cls_token" not in message
    assert "hint" not in message  # the keys do look like ViTPose
    assert sorted(acc.ignored) == ["backbone.cls_token", "head.bn.num_batches_tracked"]


def test_key_accountant_all_consumed_and_wildcard_shapes():
    acc = KeyAccountant({"a": np.zeros((1, 7, 4)), "b": np.zeros(2)}, "x")
    assert acc.keys() == ["a", "b"] and "a" in acc and len(acc) == 2
    assert acc.pop("a", (1, None, 4)).shape == (1, 7, 4)
    assert acc.pop("b").shape == (2,)
    assert acc.ok and acc.report() == ""
    acc.finish()


def test_key_accountant_hint_names_the_family():
    resnet = {f"layer{i}.0.conv1.weight": np.zeros((4, 4, 3, 3), np.float32) for i in range(1, 5)}
    resnet["fc.weight"] = np.zeros((10, 4), np.float32)
    acc = KeyAccountant(resnet, "resnet50.pth", "vitpose")
    acc.pop("backbone.pos_embed", (1, None, 32))
    with pytest.raises(CheckpointError, match="ResNet"):
        acc.finish()


@pytest.mark.parametrize(
    "keys, family",
    [
        (["backbone.blocks.0.attn.qkv.weight", "keypoint_head.final_layer.weight"], ("vitpose", "vitpose_original")),
        (["backbone.blocks.0.mlp.experts.0.weight", "associate_keypoint_heads.0.final_layer.weight"],
         ("vitpose_plus", "vitpose_original")),
        (["backbone.layers.0.ln1.weight", "head.final_layer.weight"], ("vitpose", "mmpose")),
        (["backbone.encoder.layer.0.attention.attention.query.weight", "head.conv.weight"],
         ("vitpose", "hf_safetensors")),
        (["resnet.conv1.weight", "global_net.laterals.0.0.weight", "refine_net.cascade.0.0.conv1.weight"],
         ("cpn", "pytorch_cpn")),
        (["model0.conv1_1.weight", "model1_1.conv5_1_CPM_L1.weight"], ("openpose", "pytorch_openpose")),
        (["conv1.weight", "layer1.0.conv1.weight", "fc.weight"], ("resnet", None)),
        (["backbone.stem.0.conv.weight", "backbone.hourglass_modules.0.up1.0.conv1.weight"], ("hourglass", "mmpose")),
        (["backbone.stem.0.conv.weight", "backbone.cpm_stages.0.model.0.conv.weight"], ("cpm", "mmpose")),
    ],
)
def test_detect_family(keys, family):
    assert detect_family(keys) == family


def test_detect_family_of_unknown_names_asks_for_the_preset():
    with pytest.raises(CheckpointError, match="--preset"):
        detect_family(["foo.bar"])


# -------------------------------------------------- converter-level errors


def test_convert_lists_missing_unexpected_misshapen(tmp_path):
    from keras_pose.conversion.vitpose_converter import convert

    sd = tiny_vitpose_state_dict()
    del sd["backbone.blocks.1.norm2.bias"]
    del sd["keypoint_head.deconv_layers.4.running_var"]
    sd["backbone.blocks.0.attn.proj.bias"] = np.zeros((31,), np.float32)
    sd["backbone.blocks.0.attn.rel_pos_h"] = np.zeros((7, 2), np.float32)
    sd["neck.something.weight"] = np.zeros((3,), np.float32)
    path = save_pth(sd, tmp_path / "broken.pth", meta={})
    with pytest.raises(CheckpointError) as info:
        convert(path, num_heads=4)
    message = str(info.value)
    assert "broken.pth" in message
    assert "missing (2)" in message
    assert "backbone.blocks.1.norm2.bias expected (32)" in message
    assert "keypoint_head.deconv_layers.4.running_var expected (16)" in message
    assert "unexpected (2)" in message
    assert "backbone.blocks.0.attn.rel_pos_h (7, 2)" in message and "neck.something.weight (3)" in message
    assert "misshapen (1)" in message
    assert "backbone.blocks.0.attn.proj.bias: checkpoint (31), model expects (32)" in message


def test_convert_wrong_family(tmp_path):
    from keras_pose.conversion.vitpose_converter import convert

    cpn = collections.OrderedDict(
        (f"module.{k}", torch.zeros(2))
        for k in ["resnet.conv1.weight", "resnet.layer1.0.conv1.weight", "global_net.laterals.0.0.weight",
                  "refine_net.cascade.0.0.conv1.weight", "refine_net.final_predict.0.conv1.weight"]
    )
    path = tmp_path / "CPN50_256x192.pth.tar"
    torch.save({"epoch": 32, "state_dict": cpn, "optimizer": {}}, path)
    with pytest.raises(CheckpointError, match="CPN") as info:
        convert(path)
    assert "not a ViTPose" in str(info.value)


def test_convert_entry_disagreeing_with_file(tmp_path):
    from keras_pose.conversion.vitpose_converter import convert

    path = save_pth(tiny_vitpose_state_dict(), tmp_path / "tiny.pth")
    entry = {
        "task_class": "ViTPose",
        "config": {"hidden_dim": 32, "num_layers": 12, "num_heads": 4, "mlp_dim": 64,
                   "image_size": [64, 48], "decoder": "classic", "keypoint_spec": "coco"},
    }
    with pytest.raises(CheckpointError, match=r"num_layers=12.*num_layers=2"):
        convert(path, entry=entry)
    entry["config"]["num_layers"] = 2
    entry["config"]["decoder"] = "simple"
    with pytest.raises(CheckpointError, match=r"decoder='simple'.*decoder='classic'"):
        convert(path, entry=entry)
    entry["config"]["decoder"] = "classic"
    # An input size the position table does not fit: refused when asked for, the file's size (with a
    # warning naming both) when only the preset names it.
    with pytest.raises(CheckpointError, match="position table of 13 rows"):
        convert(path, entry=entry, image_size=(256, 192))
    entry["config"]["image_size"] = [256, 192]
    with pytest.warns(UserWarning, match=r"256x192.*position table of 13 rows.*64x48"):
        assert convert(path, entry=entry).image_size == (64, 48)
    entry["config"]["image_size"] = [64, 48]
    entry["config"]["keypoint_spec"] = "mpii"
    with pytest.raises(CheckpointError, match="16 keypoints.*num_keypoints=17"):
        convert(path, entry=entry)
    entry["config"]["keypoint_spec"] = "coco"
    model = convert(path, entry=entry)
    assert model.image_size == (64, 48) and model.backbone.num_heads == 4


def test_convert_nonstandard_width_needs_num_heads(tmp_path):
    from keras_pose.conversion.vitpose_converter import convert

    path = save_pth(tiny_vitpose_state_dict(), tmp_path / "tiny.pth")
    with pytest.raises(CheckpointError, match="num_heads"):
        convert(path)
    with pytest.raises(TypeError, match="num_head"):
        convert(path, num_head=4)
