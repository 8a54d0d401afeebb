"""Plain-data settings of the reference releases, shared by models and presets.

Normalisation statistics and architecture tables that the model code uses
as defaults and the preset definitions (`keras_pose.presets`) record. The
module imports nothing, so listing presets (`keras-pose presets`) needs no
deep-learning framework.

Units: mean / std are per channel in 0..255 pixel units, in the channel
order named beside them.
"""

# ImageNet statistics, RGB order (torchvision / mmpose / timm).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
IMAGENET_PREPROCESSING = {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "channel_order": "rgb"}

# pytorch-cpn `config.py`: `pixel_means = [122.7717, 115.9465, 102.9801]  # RGB`;
# images are read as RGB, divided by 255 (`im_to_torch`) and the means / 255
# subtracted (`color_normalize`), with no division by a std. In this
# project's 0..255 convention that is mean = pixel_means, std = 255.
CPN_PREPROCESSING = {
    "mean": [122.7717, 115.9465, 102.9801],
    "std": [255.0, 255.0, 255.0],
    "channel_order": "rgb",
}

# The ViT sizes of the released ViTPose models (ViT-S / B / L / H): token
# width, depth, attention heads and MLP width. `num_heads` cannot be read
# from a checkpoint; converters take it from here by width.
VIT_SIZES = {
    "small": {"hidden_dim": 384, "num_layers": 12, "num_heads": 12, "mlp_dim": 1536},
    "base": {"hidden_dim": 768, "num_layers": 12, "num_heads": 12, "mlp_dim": 3072},
    "large": {"hidden_dim": 1024, "num_layers": 24, "num_heads": 16, "mlp_dim": 4096},
    "huge": {"hidden_dim": 1280, "num_layers": 32, "num_heads": 16, "mlp_dim": 5120},
}
# ViTPose++ expert widths (part_features) of the released S/B/L/H models, by token width.
VITPOSE_PLUS_PART_FEATURES = {384: 96, 768: 192, 1024: 256, 1280: 320}

# mmpose's Hourglass-52 (`HourglassNet`, one stack): the released model's backbone.
HOURGLASS52 = {
    "num_stacks": 1,
    "downsample_times": 5,
    "stage_channels": [256, 256, 384, 384, 384, 512],
    "stage_blocks": [2, 2, 2, 2, 2, 4],
    "feat_channels": 256,
    "stem_channels": 128,
}
