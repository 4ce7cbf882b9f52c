"""Changes the caller's hf_config (doubles the image size) and answers for the changed config."""
from vllm_vision_conformance.reference import get_vision_encoder_info as _right


def get_vision_encoder_info(hf_config):
    hf_config.vision_config.image_size = 2 * hf_config.vision_config.image_size
    return _right(hf_config)
