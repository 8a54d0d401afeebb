"""Files shipped with the package: a sample image for the quick start.

``000000000785.jpg``: COCO val2017 image 785, a skier, 640x425, licensed CC BY
2.0 by its Flickr author; see ``ATTRIBUTION.md`` beside this file.
"""

import os

SAMPLE_IMAGE_NAME = "000000000785.jpg"
# The person's ground-truth box in COCO val2017 (xywh, image pixels).
SAMPLE_IMAGE_BOX = (280.79, 44.73, 218.7, 346.68)
SAMPLE_IMAGE_CREDIT = "COCO val2017 image 785, CC BY 2.0; credits in keras_pose/assets/ATTRIBUTION.md"


def sample_image_path():
    """Path of the bundled sample image (a person skiing; one person, COCO id 785)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), SAMPLE_IMAGE_NAME)


__all__ = ["SAMPLE_IMAGE_BOX", "SAMPLE_IMAGE_CREDIT", "SAMPLE_IMAGE_NAME", "sample_image_path"]
