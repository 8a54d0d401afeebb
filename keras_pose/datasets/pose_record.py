"""Common in-memory record of pose annotations.

Every reader in `keras_pose.datasets` returns a `PoseDataset`: a read-only,
list-like collection of `PoseInstance` records (one person or animal each)
plus the image table and the keypoint specification.

Conventions (see CONTRIBUTING.md): boxes are COCO `xywh` in image pixels,
points are `(x, y)` in image pixels with a 0-based pixel grid (the centre of
the top-left pixel is `(0, 0)`), sizes are `(height, width)`.
"""

import collections.abc
import dataclasses
import math
import os
from typing import NamedTuple, Optional

import numpy as np

from keras_pose.errors import AnnotationError, AnnotationFileNotFoundError, ImageReadError  # noqa: F401 - re-exported

_READ_ONLY_ARRAYS = ("bbox", "keypoints", "keypoints_visible")


class ImageInfo(NamedTuple):
    """One row of a dataset's image table.

    Attributes:
        file_name: image file name relative to the dataset's `image_root`.
        width: image width in pixels, or `None` when the annotation format
            does not record it (MPII) and the image was not decoded.
        height: image height in pixels, or `None` (see `width`).
        path: full path (`image_root` joined with `file_name`).
    """

    file_name: str
    width: Optional[int]
    height: Optional[int]
    path: str


@dataclasses.dataclass(frozen=True, eq=False)
class PoseInstance:
    """One annotated (or detected) instance.

    Attributes:
        image_path: path of the image file.
        image_id: integer image id (COCO `image_id`; for MPII the image
            file stem as an integer, as mmpose does).
        instance_id: annotation id (COCO `id`; for MPII and detections a
            running index).
        bbox: `(4,)` float32 box, COCO `xywh` in image pixels.
        keypoints: `(K, 2)` float32 keypoint `(x, y)` in image pixels.
            Unlabelled keypoints are stored as `(0, 0)`.
        keypoints_visible: `(K,)` float32 COCO visibility flag: 0 unlabelled,
            1 labelled but occluded, 2 labelled and visible. Use
            `keypoints_visible > 0` for "labelled" and
            `np.minimum(keypoints_visible, 1)` for a 0/1 target weight.
        area: object area in pixels^2 (COCO `area`; see the readers for
            how it is filled when the file has none).
        iscrowd: 1 for a crowd region, else 0.
        category_id: COCO category id.
        num_keypoints: number of labelled keypoints.
        bbox_score: box confidence (1.0 for ground-truth boxes).
        head_size: MPII PCKh normaliser in pixels, or `None`.
    """

    image_path: str
    image_id: int
    instance_id: int
    bbox: np.ndarray
    keypoints: np.ndarray
    keypoints_visible: np.ndarray
    area: float
    iscrowd: int
    category_id: int
    num_keypoints: int
    bbox_score: float = 1.0
    head_size: Optional[float] = None

    def __post_init__(self):
        bbox = np.array(self.bbox, dtype=np.float32).reshape(-1)
        if bbox.shape != (4,):
            raise ValueError(
                f"PoseInstance.bbox must have 4 values (x, y, w, h); got shape "
                f"{np.shape(self.bbox)} for image {self.image_id}, instance {self.instance_id}."
            )
        keypoints = np.array(self.keypoints, dtype=np.float32)
        if keypoints.ndim != 2 or keypoints.shape[1] != 2:
            raise ValueError(
                f"PoseInstance.keypoints must have shape (K, 2); got {keypoints.shape} "
                f"for image {self.image_id}, instance {self.instance_id}."
            )
        visible = np.array(self.keypoints_visible, dtype=np.float32).reshape(-1)
        if visible.shape != (keypoints.shape[0],):
            raise ValueError(
                f"PoseInstance.keypoints_visible must have shape ({keypoints.shape[0]},) to "
                f"match keypoints; got {np.shape(self.keypoints_visible)} for image "
                f"{self.image_id}, instance {self.instance_id}."
            )
        for name, value in (("bbox", bbox), ("keypoints", keypoints), ("keypoints_visible", visible)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "image_path", os.fspath(self.image_path))
        object.__setattr__(self, "image_id", int(self.image_id))
        object.__setattr__(self, "instance_id", int(self.instance_id))
        object.__setattr__(self, "area", float(self.area))
        object.__setattr__(self, "iscrowd", int(self.iscrowd))
        object.__setattr__(self, "category_id", int(self.category_id))
        object.__setattr__(self, "num_keypoints", int(self.num_keypoints))
        object.__setattr__(self, "bbox_score", float(self.bbox_score))
        if self.head_size is not None:
            object.__setattr__(self, "head_size", float(self.head_size))

    @property
    def bbox_xyxy(self):
        """`(4,)` float32 box as `(x1, y1, x2, y2)`."""
        x, y, w, h = self.bbox
        return np.array([x, y, x + w, y + h], dtype=np.float32)

    @property
    def bbox_center(self):
        """`(2,)` float32 box centre `(x, y)`."""
        x, y, w, h = self.bbox
        return np.array([x + 0.5 * w, y + 0.5 * h], dtype=np.float32)

    @property
    def keypoints_with_visibility(self):
        """`(K, 3)` float32 `[x, y, v]`, the COCO `keypoints` layout."""
        return np.concatenate([self.keypoints, self.keypoints_visible[:, None]], axis=1)

    def replace(self, **changes):
        """A copy with the given fields replaced."""
        return dataclasses.replace(self, **changes)

    def __repr__(self):
        return (
            f"PoseInstance(image_id={self.image_id}, instance_id={self.instance_id}, "
            f"bbox={np.round(self.bbox, 2).tolist()}, num_keypoints={self.num_keypoints}/"
            f"{self.keypoints.shape[0]}, iscrowd={self.iscrowd}, category_id={self.category_id}, "
            f"bbox_score={self.bbox_score:.4g}, head_size={self.head_size}, "
            f"image_path={self.image_path!r})"
        )


def resolve_keypoint_spec(keypoint_spec):
    """Normalise a keypoint-spec argument.

    Args:
        keypoint_spec: `None`, a spec name (`str`, resolved lazily with
            `keras_pose.keypoints.get_keypoint_spec`), a spec object (anything
            with a `num_keypoints` attribute), or an `int` keypoint count.

    Returns:
        `(spec, num_keypoints)`: `spec` is the spec object or `None`;
        `num_keypoints` is an int or `None` (when `keypoint_spec` is `None`).
    """
    if keypoint_spec is None:
        return None, None
    if isinstance(keypoint_spec, str):
        try:
            from keras_pose.keypoints import get_keypoint_spec
        except ImportError as e:  # pragma: no cover - depends on the keypoints module
            raise ImportError(
                f"Resolving the keypoint spec name {keypoint_spec!r} needs "
                "keras_pose.keypoints.get_keypoint_spec, which could not be imported "
                f"({e}). Pass a KeypointSpec object or the keypoint count (int) instead."
            ) from e
        keypoint_spec = get_keypoint_spec(keypoint_spec)
    if isinstance(keypoint_spec, (bool, np.bool_)):
        raise TypeError("keypoint_spec must be a spec, a spec name or an int, not a bool.")
    if isinstance(keypoint_spec, (int, np.integer)):
        if keypoint_spec <= 0:
            raise ValueError(f"keypoint_spec as a keypoint count must be positive; got {keypoint_spec}.")
        return None, int(keypoint_spec)
    if hasattr(keypoint_spec, "num_keypoints"):
        return keypoint_spec, int(keypoint_spec.num_keypoints)
    raise TypeError(
        "keypoint_spec must be None, a spec name (str), a KeypointSpec or an int keypoint "
        f"count; got {type(keypoint_spec).__name__}."
    )


def _spec_label(spec, num_keypoints):
    if spec is None:
        return f"{num_keypoints} keypoints"
    name = getattr(spec, "name", None)
    return f"keypoint spec {name!r} ({num_keypoints} keypoints)" if name else f"{num_keypoints} keypoints"


class PoseDataset(collections.abc.Sequence):
    """A read-only list of `PoseInstance` plus dataset-level information.

    Attributes:
        keypoint_spec: the KeypointSpec, or `None` when the reader was given
            only a keypoint count (or nothing).
        num_keypoints: K, the number of keypoints per instance.
        image_root: folder the image file names are relative to.
        annotation_file: path of the annotation file read (or `None`).
        images: dict `image_id -> ImageInfo(file_name, width, height, path)`
            for every image listed in the annotation file, including images
            without any kept instance.
        ignored_instances: tuple of instances the reader set aside in eval
            mode (crowd regions, people without labelled keypoints, boxes
            with no area) -- what bottom-up ignore masks or a rebuilt ground
            truth need. Empty in train mode.
        mode: "train" or "eval".
        categories: the COCO `categories` list of the annotation file
            (empty for formats without one, e.g. MPII).
    """

    def __init__(
        self,
        instances,
        keypoint_spec=None,
        image_root=None,
        annotation_file=None,
        images=None,
        num_keypoints=None,
        ignored_instances=(),
        mode="train",
        categories=None,
    ):
        spec, spec_k = resolve_keypoint_spec(keypoint_spec)
        self._instances = tuple(instances)
        self.keypoint_spec = spec
        if num_keypoints is None:
            num_keypoints = spec_k
        if num_keypoints is None and self._instances:
            num_keypoints = self._instances[0].keypoints.shape[0]
        if spec_k is not None and num_keypoints is not None and spec_k != num_keypoints:
            raise ValueError(
                f"num_keypoints={num_keypoints} does not match the keypoint spec ({spec_k})."
            )
        self.num_keypoints = None if num_keypoints is None else int(num_keypoints)
        for inst in self._instances + tuple(ignored_instances):
            if not isinstance(inst, PoseInstance):
                raise TypeError(f"PoseDataset holds PoseInstance records; got {type(inst).__name__}.")
            if self.num_keypoints is not None and inst.keypoints.shape[0] != self.num_keypoints:
                raise ValueError(
                    f"instance {inst.instance_id} of image {inst.image_id} has "
                    f"{inst.keypoints.shape[0]} keypoints; the dataset has {self.num_keypoints}."
                )
        self.image_root = None if image_root is None else os.fspath(image_root)
        self.annotation_file = None if annotation_file is None else os.fspath(annotation_file)
        self.images = dict(images or {})
        self.ignored_instances = tuple(ignored_instances)
        self.mode = mode
        self.categories = list(categories or [])

    # Sequence protocol -------------------------------------------------
    def __len__(self):
        return len(self._instances)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self._copy(self._instances[index])
        return self._instances[index]

    def __iter__(self):
        return iter(self._instances)

    def __repr__(self):
        return (
            f"PoseDataset({len(self)} instances, {len(self.images)} images, "
            f"num_keypoints={self.num_keypoints}, mode={self.mode!r}, "
            f"annotation_file={self.annotation_file!r})"
        )

    def _copy(self, instances, ignored=None):
        return PoseDataset(
            instances,
            keypoint_spec=self.keypoint_spec,
            image_root=self.image_root,
            annotation_file=self.annotation_file,
            images=self.images,
            num_keypoints=self.num_keypoints,
            ignored_instances=self.ignored_instances if ignored is None else ignored,
            mode=self.mode,
            categories=self.categories,
        )

    # Helpers ------------------------------------------------------------
    @property
    def instances(self):
        """Tuple of all `PoseInstance` records."""
        return self._instances

    @property
    def image_ids(self):
        """List of image ids of the image table, in file order."""
        return list(self.images)

    @property
    def sigmas(self):
        """`(K,)` OKS sigmas from the keypoint spec, or `None`."""
        if self.keypoint_spec is None or getattr(self.keypoint_spec, "sigmas", None) is None:
            return None
        return np.asarray(self.keypoint_spec.sigmas, dtype=np.float64)

    def filter(self, predicate):
        """A new `PoseDataset` with the instances for which `predicate(inst)` is true."""
        return self._copy([inst for inst in self._instances if predicate(inst)])

    def instances_by_image(self):
        """Dict `image_id -> list of PoseInstance`, images in table order.

        Images without instances map to an empty list.
        """
        grouped = {image_id: [] for image_id in self.images}
        for inst in self._instances:
            grouped.setdefault(inst.image_id, []).append(inst)
        return grouped

    def to_arrays(self):
        """Stack the instances into NumPy arrays (e.g. for `tf.data`).

        Returns:
            dict with `image_path` `(N,)` str, `image_id` `(N,)` int64,
            `instance_id` `(N,)` int64, `bbox` `(N, 4)` float32 xywh,
            `keypoints` `(N, K, 2)` float32, `keypoints_visible` `(N, K)`
            float32, `area` `(N,)` float32, `iscrowd` `(N,)` int32,
            `category_id` `(N,)` int64, `num_keypoints` `(N,)` int32,
            `bbox_score` `(N,)` float32, `head_size` `(N,)` float32 (NaN where
            unknown).
        """
        k = self.num_keypoints or 0
        insts = self._instances
        n = len(insts)

        def stack(name, shape, dtype):
            if n == 0:
                return np.zeros((0,) + shape, dtype=dtype)
            return np.stack([np.asarray(getattr(i, name), dtype=dtype) for i in insts])

        return {
            "image_path": np.array([i.image_path for i in insts], dtype=str),
            "image_id": np.array([i.image_id for i in insts], dtype=np.int64),
            "instance_id": np.array([i.instance_id for i in insts], dtype=np.int64),
            "bbox": stack("bbox", (4,), np.float32),
            "keypoints": stack("keypoints", (k, 2), np.float32),
            "keypoints_visible": stack("keypoints_visible", (k,), np.float32),
            "area": np.array([i.area for i in insts], dtype=np.float32),
            "iscrowd": np.array([i.iscrowd for i in insts], dtype=np.int32),
            "category_id": np.array([i.category_id for i in insts], dtype=np.int64),
            "num_keypoints": np.array([i.num_keypoints for i in insts], dtype=np.int32),
            "bbox_score": np.array([i.bbox_score for i in insts], dtype=np.float32),
            "head_size": np.array(
                [math.nan if i.head_size is None else i.head_size for i in insts], dtype=np.float32
            ),
        }


# Shared reader helpers -------------------------------------------------------


class _Problems:
    """Collects per-record problems for `skip_invalid=True` readers."""

    def __init__(self, path, skip_invalid, what="record"):
        self.path = path
        self.skip_invalid = skip_invalid
        self.what = what
        self.by_reason = collections.OrderedDict()

    def report(self, reason, record, message, error_cls=AnnotationError):
        """Raise `error_cls(message)`, or record the problem when skipping."""
        if not self.skip_invalid:
            raise error_cls(message)
        self.by_reason.setdefault(reason, []).append(record)

    @property
    def count(self):
        return sum(len(v) for v in self.by_reason.values())

    def summary(self):
        parts = []
        for reason, records in self.by_reason.items():
            shown = ", ".join(str(r) for r in records[:5])
            more = f", ... ({len(records) - 5} more)" if len(records) > 5 else ""
            parts.append(f"{len(records)} with {reason} ({self.what} {shown}{more})")
        return "; ".join(parts)


def check_image_file(path, check, width=None, height=None, context=""):
    """Check that an image exists (and optionally decodes with the listed size).

    Args:
        path: image path.
        check: True/"exists" (existence only) or "decode" (decode with OpenCV).
        width, height: expected size in pixels, compared when decoding with
            the size of the upright image (after its EXIF orientation).
        context: text naming the record, for the error message.

    Returns:
        `(height, width)` when decoded, else `None`.

    Raises:
        ImageReadError: missing file, undecodable file, or size mismatch.
    """
    if not os.path.isfile(path):
        raise ImageReadError(
            f"image file {path!r} {context}does not exist. Check `image_root` (images are "
            "looked up as image_root/file_name) or pass check_images=False to skip this check."
        )
    if check != "decode":
        return None
    import cv2

    # IMREAD_COLOR applies the EXIF orientation: the size is that of the
    # upright image, the frame annotations and `read_image` use.
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ImageReadError(
            f"image file {path!r} {context}does not decode (corrupt or not an image). "
            "Replace the file or remove its annotations."
        )
    h, w = image.shape[:2]
    if (width is not None and int(width) != w) or (height is not None and int(height) != h):
        raise ImageReadError(
            f"image file {path!r} {context}is {h}x{w} (HxW) but the annotation file lists "
            f"{height}x{width}; the file does not belong to these annotations (wrong image_root?)."
        )
    return h, w


def normalize_check_images(check_images):
    if check_images in (False, None):
        return False
    if check_images is True or check_images == "exists":
        return "exists"
    if check_images == "decode":
        return "decode"
    raise ValueError(f"check_images must be True, False, 'exists' or 'decode'; got {check_images!r}.")


def normalize_mode(mode):
    if mode not in ("train", "eval"):
        raise ValueError(f"mode must be 'train' or 'eval'; got {mode!r}.")
    return mode
