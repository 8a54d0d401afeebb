"""The OpenPose network (Cao et al.): VGG-19 front + multi-stage PAF / confidence-map refinement.

Two variants, with CMU's Caffe layer names (so the converters map names 1:1):

- ``"coco18"`` (CVPR 2017, COCO-18 body model, `pose_iter_440000.caffemodel`
  and the PyTorch port's `body_pose_model.pth`): VGG-19 ``conv1_1`` ..
  ``conv4_2`` (ReLU, three 2x2/2 max-pools) + ``conv4_3_CPM`` /
  ``conv4_4_CPM`` (ReLU) -> features; stage 1 per branch: 3 x 3x3 conv +
  ReLU, a 1x1 conv (+ ReLU) and a 1x1 conv to the outputs
  (``conv5_{1..5}_CPM_L{b}``); stages 2..T per branch on
  ``concat([PAF, heatmaps, features])``: 5 x 7x7 conv + ReLU, 1x1 + ReLU,
  1x1 (``Mconv{1..7}_stage{s}_L{b}``). L1 = PAFs, L2 = heatmaps.
- ``"body25"`` (TPAMI 2019, BODY_25, `pose_iter_584000.caffemodel`): the same
  front with PReLU after ``conv4_2`` / ``conv4_3_CPM`` / ``conv4_4_CPM``; PAF
  stages (branch L2) first, then heatmap stages (branch L1), each stage 5
  dense blocks of three chained 3x3 convs + PReLU whose three outputs are
  concatenated, then a 1x1 conv + PReLU and a 1x1 conv. PAF stage 0 sees the
  features, later PAF stages ``[features, previous PAF]``; heatmap stage 0
  ``[features, final PAF]``, later ones ``[features, previous heatmaps, final
  PAF]``. Stage 0 of each branch is narrower (``first_stage_channels``).

Fully convolutional: any input height / width (multiples of 8 give exact
stride-8 maps; other sizes round up, as Caffe's ceil-mode pooling does).
"""

import keras

from keras_pose.utils.backend_imports import import_keras_hub
from keras_pose.utils.fast_init import fast_init_constructor

keras_hub = import_keras_hub()  # without TensorFlow on JAX / PyTorch (utils.backend_imports)

VARIANTS = ("coco18", "body25")
VGG_LAYERS = (("conv1_1", 0), ("conv1_2", 0), "pool", ("conv2_1", 1), ("conv2_2", 1), "pool",
              ("conv3_1", 2), ("conv3_2", 2), ("conv3_3", 2), ("conv3_4", 2), "pool",
              ("conv4_1", 3), ("conv4_2", 3))


def _positive_ints(values, count, name):
    values = tuple(int(v) for v in values)
    if len(values) != count or min(values) < 1:
        raise ValueError(f"`{name}` must be {count} positive integers, got {values}.")
    return values


@keras.saving.register_keras_serializable(package="keras_pose")
class OpenPoseBackbone(keras_hub.models.Backbone):
    """OpenPose network: image -> features and every stage's PAFs and confidence maps.

    Input normalised BGR images ``(B, H, W, 3)`` (pixel / 256 - 0.5, the
    reference normalisation); output a dict of ``(B, ceil(H/8), ceil(W/8),
    C)`` maps: ``"features"``, ``"paf_stage{i}"`` (``num_pafs`` channels,
    i = 1..P) and ``"heatmap_stage{j}"`` (``num_heatmaps`` channels: parts
    + background, j = 1..Q), stage 1 first; the last of each is the final
    prediction.

    Args:
        variant: ``"coco18"`` or ``"body25"`` (see the module docstring).
        num_heatmaps: confidence-map channels (19 = 18 parts + background for
            COCO-18, 26 for BODY_25).
        num_pafs: PAF channels (2 per limb: 38 for COCO-18, 52 for BODY_25).
        num_stages: coco18: T stages, each with both branches (6).
        num_paf_stages, num_heatmap_stages: body25: PAF then heatmap stages
            (4, 2).
        vgg_channels: widths of the four VGG blocks (64, 128, 256, 512).
        cpm_channels: widths of conv4_3_CPM / conv4_4_CPM (256, 128); the
            second is the feature width.
        stage_channels: width of the stage convolutions (128).
        head_channels: coco18: width of the 1x1 conv before stage 1's
            outputs (512); body25: of the 1x1 conv of stages >= 1 (512).
        refine_head_channels: coco18: width of the 1x1 conv of stages >= 2
            (128).
        first_stage_channels: body25: dense-block width of stage 0 of each
            branch (96).
        first_head_channels: body25: 1x1 width of stage 0 of each branch (256).
        refine_kernel_size: coco18: kernel of the stage >= 2 convolutions (7).
        final_heatmap_relu: apply a ReLU to the last stage's heatmaps. The
            PyTorch port of the COCO-18 model (pytorch-openpose,
            controlnet-aux) does (its `no_relu_layers` misses
            ``Mconv7_stage6_L2``); CMU's Caffe model does not.
        dtype: dtype policy.
    """

    @fast_init_constructor
    def __init__(
        self,
        *,
        variant="coco18",
        num_heatmaps=19,
        num_pafs=38,
        num_stages=6,
        num_paf_stages=4,
        num_heatmap_stages=2,
        vgg_channels=(64, 128, 256, 512),
        cpm_channels=(256, 128),
        stage_channels=128,
        head_channels=512,
        refine_head_channels=128,
        first_stage_channels=96,
        first_head_channels=256,
        refine_kernel_size=7,
        final_heatmap_relu=False,
        dtype=None,
        **kwargs,
    ):
        if variant not in VARIANTS:
            raise ValueError(f"`variant` must be one of {VARIANTS}, got {variant!r}.")
        num_heatmaps, num_pafs = int(num_heatmaps), int(num_pafs)
        if num_heatmaps < 1 or num_pafs < 2 or num_pafs % 2:
            raise ValueError(f"num_heatmaps must be >= 1 and num_pafs a positive even number (x, y per limb), "
                             f"got {num_heatmaps} and {num_pafs}.")
        num_stages, num_paf_stages, num_heatmap_stages = int(num_stages), int(num_paf_stages), int(num_heatmap_stages)
        if min(num_stages, num_paf_stages, num_heatmap_stages) < 1:
            raise ValueError("num_stages, num_paf_stages and num_heatmap_stages must be >= 1, got "
                             f"{num_stages}, {num_paf_stages}, {num_heatmap_stages}.")
        vgg_channels = _positive_ints(vgg_channels, 4, "vgg_channels")
        cpm_channels = _positive_ints(cpm_channels, 2, "cpm_channels")
        widths = dict(stage_channels=int(stage_channels), head_channels=int(head_channels),
                      refine_head_channels=int(refine_head_channels), first_stage_channels=int(first_stage_channels),
                      first_head_channels=int(first_head_channels))
        if min(widths.values()) < 1:
            raise ValueError(f"stage widths must be positive, got {widths}.")
        refine_kernel_size = int(refine_kernel_size)
        if refine_kernel_size < 1 or refine_kernel_size % 2 == 0:
            raise ValueError(f"`refine_kernel_size` must be a positive odd integer, got {refine_kernel_size}.")

        prelu_front = variant == "body25"

        def conv(name, filters, kernel):
            return keras.layers.Conv2D(filters, kernel, padding="same", dtype=dtype, name=name)

        def act(x, name, prelu):
            if prelu:
                return keras.layers.PReLU(shared_axes=[1, 2], dtype=dtype, name=name)(x)
            return keras.layers.ReLU(dtype=dtype, name=name)(x)

        def concat(parts, name):
            return keras.layers.Concatenate(axis=-1, dtype=dtype, name=name)(parts)

        # === Functional model ===
        images = keras.Input(shape=(None, None, 3), name="images")
        x = images
        pools = 0
        for item in VGG_LAYERS:
            if item == "pool":
                pools += 1
                x = keras.layers.MaxPooling2D(2, 2, padding="same", dtype=dtype, name=f"pool{pools}_stage1")(x)
                continue
            name, block = item
            x = conv(name, vgg_channels[block], 3)(x)
            prelu = prelu_front and name == "conv4_2"
            x = act(x, "prelu4_2" if prelu else f"relu{name[4:]}", prelu)
        x = conv("conv4_3_CPM", cpm_channels[0], 3)(x)
        x = act(x, "prelu4_3_CPM" if prelu_front else "relu4_3_CPM", prelu_front)
        x = conv("conv4_4_CPM", cpm_channels[1], 3)(x)
        features = act(x, "prelu4_4_CPM" if prelu_front else "relu4_4_CPM", prelu_front)

        outputs = {"features": features}
        if variant == "coco18":
            pafs, heatmaps = self._coco18_stages(features, num_stages, num_pafs, num_heatmaps, widths,
                                                 refine_kernel_size, final_heatmap_relu, conv, act, concat)
        else:
            pafs, heatmaps = self._body25_stages(features, num_paf_stages, num_heatmap_stages, num_pafs,
                                                 num_heatmaps, widths, final_heatmap_relu, conv, act, concat)
        for i, p in enumerate(pafs):
            outputs[f"paf_stage{i + 1}"] = p
        for i, h in enumerate(heatmaps):
            outputs[f"heatmap_stage{i + 1}"] = h

        super().__init__(inputs=images, outputs=outputs, dtype=dtype, **kwargs)

        # === Config ===
        self.variant = variant
        self.num_heatmaps = num_heatmaps
        self.num_pafs = num_pafs
        self.num_stages = num_stages
        self.num_paf_stages = num_paf_stages
        self.num_heatmap_stages = num_heatmap_stages
        self.vgg_channels = vgg_channels
        self.cpm_channels = cpm_channels
        self.stage_channels = widths["stage_channels"]
        self.head_channels = widths["head_channels"]
        self.refine_head_channels = widths["refine_head_channels"]
        self.first_stage_channels = widths["first_stage_channels"]
        self.first_head_channels = widths["first_head_channels"]
        self.refine_kernel_size = refine_kernel_size
        self.final_heatmap_relu = bool(final_heatmap_relu)
        self.stride = 8

    @property
    def paf_stages(self):
        """Number of PAF outputs (stages)."""
        return self.num_stages if self.variant == "coco18" else self.num_paf_stages

    @property
    def heatmap_stages(self):
        """Number of confidence-map outputs (stages)."""
        return self.num_stages if self.variant == "coco18" else self.num_heatmap_stages

    @staticmethod
    def _coco18_stages(features, num_stages, num_pafs, num_heatmaps, w, kernel, final_relu, conv, act, concat):
        pafs, heatmaps = [], []
        for s in range(1, num_stages + 1):
            branch_out = {}
            x_in = features if s == 1 else concat([pafs[-1], heatmaps[-1], features], f"concat_stage{s}")
            for b, out_channels in ((1, num_pafs), (2, num_heatmaps)):
                x = x_in
                if s == 1:
                    names = [f"conv5_{i}_CPM_L{b}" for i in range(1, 6)]
                    specs = [(w["stage_channels"], 3)] * 3 + [(w["head_channels"], 1)]
                else:
                    names = [f"Mconv{i}_stage{s}_L{b}" for i in range(1, 8)]
                    specs = [(w["stage_channels"], kernel)] * 5 + [(w["refine_head_channels"], 1)]
                for name, (filters, k) in zip(names[:-1], specs):
                    x = act(conv(name, filters, k)(x), "relu_" + name, False)
                x = conv(names[-1], out_channels, 1)(x)
                if final_relu and b == 2 and s == num_stages:
                    x = act(x, "relu_" + names[-1], False)
                branch_out[b] = x
            pafs.append(branch_out[1])
            heatmaps.append(branch_out[2])
        return pafs, heatmaps

    @staticmethod
    def _body25_stage(x, stage, branch, width, head, out_channels, conv, act, concat):
        for i in range(1, 6):
            parts = []
            for j in range(3):
                name = f"Mconv{i}_stage{stage}_L{branch}_{j}"
                x = act(conv(name, width, 3)(x), f"Mprelu{i}_stage{stage}_L{branch}_{j}", True)
                parts.append(x)
            x = concat(parts, f"Mconv{i}_stage{stage}_L{branch}_concat")
        x = act(conv(f"Mconv6_stage{stage}_L{branch}", head, 1)(x), f"Mprelu6_stage{stage}_L{branch}", True)
        return conv(f"Mconv7_stage{stage}_L{branch}", out_channels, 1)(x)

    @classmethod
    def _body25_stages(cls, features, num_paf_stages, num_heatmap_stages, num_pafs, num_heatmaps, w, final_relu,
                       conv, act, concat):
        def widths(s):
            if s == 0:
                return w["first_stage_channels"], w["first_head_channels"]
            return w["stage_channels"], w["head_channels"]

        pafs, heatmaps = [], []
        for s in range(num_paf_stages):
            x = features if s == 0 else concat([features, pafs[-1]], f"concat_stage{s}_L2")
            pafs.append(cls._body25_stage(x, s, 2, *widths(s), num_pafs, conv, act, concat))
        for s in range(num_heatmap_stages):
            parts = [features] + ([heatmaps[-1]] if s else []) + [pafs[-1]]
            x = concat(parts, f"concat_stage{s}_L1")
            heatmaps.append(cls._body25_stage(x, s, 1, *widths(s), num_heatmaps, conv, act, concat))
        if final_relu:
            heatmaps[-1] = act(heatmaps[-1], "relu_final_heatmaps", False)
        return pafs, heatmaps

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "variant": self.variant,
                "num_heatmaps": self.num_heatmaps,
                "num_pafs": self.num_pafs,
                "num_stages": self.num_stages,
                "num_paf_stages": self.num_paf_stages,
                "num_heatmap_stages": self.num_heatmap_stages,
                "vgg_channels": list(self.vgg_channels),
                "cpm_channels": list(self.cpm_channels),
                "stage_channels": self.stage_channels,
                "head_channels": self.head_channels,
                "refine_head_channels": self.refine_head_channels,
                "first_stage_channels": self.first_stage_channels,
                "first_head_channels": self.first_head_channels,
                "refine_kernel_size": self.refine_kernel_size,
                "final_heatmap_relu": self.final_heatmap_relu,
            }
        )
        return config
