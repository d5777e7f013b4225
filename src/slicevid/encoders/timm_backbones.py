"""Any timm backbone as a slice encoder (``"timm:<name>"``), with ImageNet weights from local caches only.

timm normally fetches pretrained weights from the Hugging Face hub, retrying for most of a
minute when the network is closed. slicevid looks the file up in the Hugging Face cache (or
the torch hub cache, for older models) itself and hands timm the local path, so no request
is ever made.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from ..errors import UnknownNameError, WeightsNotFoundError
from ..weights import WEIGHTS_OPTION, hugging_face_cache_dir, hugging_face_cache_file, torch_hub_file


class TimmEncoder(nn.Module):
    """Adapter for any timm backbone, created headless (``num_classes=0``).

    Args:
        name: a timm model name (``"resnet18"``, ``"convnext_tiny.fb_in1k"``).
        weights_file: a local file of the model's pretrained weights, or ``None`` for random ones.
        **kwargs: passed to ``timm.create_model`` (``in_chans``, ``img_size`` ...).
    """

    def __init__(self, name: str, *, weights_file: Path | None = None, **kwargs: Any) -> None:
        super().__init__()
        import timm

        if not timm.list_models(name.split(".")[0]) and not timm.list_models(name, pretrained=True):
            raise UnknownNameError(f"Unknown timm model {name!r}.{_close_timm_names(name)} See timm.list_models().")
        self.name = name
        overlay = {"pretrained_cfg_overlay": {"file": str(weights_file)}} if weights_file else {}
        self.model = timm.create_model(name, pretrained=weights_file is not None, num_classes=0, **overlay, **kwargs)
        # Models with a pre-logits layer report its width separately from the trunk's.
        self.num_features = getattr(self.model, "head_hidden_size", None) or self.model.num_features

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def input_size_hint(self) -> str:
        """What input size this backbone needs, and how to change that."""
        size = getattr(getattr(self.model, "patch_embed", None), "img_size", None)
        if size is not None:
            return (
                f"timm model {self.name!r} takes {size[0]}x{size[1]} slices; pass encoder_kwargs "
                '(CLI: --encoder-kwargs) {"img_size": N} or {"dynamic_img_size": true}'
            )
        size = self.model.pretrained_cfg.get("input_size", (3, 224, 224))[1:]
        return f"timm model {self.name!r} is made for {size[0]}x{size[1]} slices and its downsampling needs larger ones"


def _close_timm_names(name: str) -> str:
    import timm

    close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.7)
    return f" Did you mean {', '.join(repr('timm:' + c) for c in close)}?" if close else ""


def local_timm_weights(name: str) -> Path:
    """The local file of timm model ``name``'s default pretrained weights (Hugging Face or torch hub cache).

    Raises:
        WeightsNotFoundError: no cached copy exists; the message says which file to fetch and where.
    """
    from timm.models import get_pretrained_cfg

    config = get_pretrained_cfg(name)
    if config is None or not (config.hf_hub_id or config.url):
        raise WeightsNotFoundError(f"timm model {name!r} has no pretrained weights; use encoder_weights=None")
    if config.hf_hub_id:
        names = tuple(n for n in (config.hf_hub_filename, "model.safetensors", "pytorch_model.bin") if n)
        found = hugging_face_cache_file(config.hf_hub_id, names)
        if found is not None:
            return found
    if config.url and not config.hf_hub_id:
        return torch_hub_file(config.url, f"ImageNet weights of timm model {name!r}")
    raise WeightsNotFoundError(
        f"ImageNet weights of timm model {name!r} are not in the Hugging Face cache ({hugging_face_cache_dir()}), "
        f'and slicevid never downloads. On a machine with network access run `python -c "import timm; '
        f"timm.create_model('{name}', pretrained=True)\"` and copy its cache there (HF_HOME sets where it is), "
        f"or pass {WEIGHTS_OPTION}."
    )


def timm_weights(name: str) -> tuple[str, tuple[float, ...], tuple[float, ...]] | None:
    """Where timm model ``name``'s default pretrained weights come from, and their input mean and std."""
    from timm.models import get_pretrained_cfg

    try:
        config = get_pretrained_cfg(name)
    except RuntimeError:  # timm raises this for a name it does not know
        return None
    if config is None or not (config.hf_hub_id or config.url):
        return None
    where = (
        f"{config.hf_hub_id} in the Hugging Face cache" if config.hf_hub_id else f"{config.url} in the torch hub cache"
    )
    source = f"timm's default pretrained weights ({config.tag or 'untagged'}): {where}"
    return source, tuple(config.mean), tuple(config.std)


def create_timm_encoder(name: str, weights: str | None, in_chans: int, kwargs: dict) -> TimmEncoder:
    """A `TimmEncoder`; ``weights="imagenet"`` uses the locally cached pretrained file."""
    if weights not in (None, "imagenet"):
        raise WeightsNotFoundError(
            f"timm encoders know encoder_weights='imagenet' only, got {weights!r}; or pass {WEIGHTS_OPTION}"
        )
    weights_file = local_timm_weights(name) if weights == "imagenet" else None
    return TimmEncoder(name, weights_file=weights_file, **({"in_chans": in_chans} if in_chans != 3 else {}), **kwargs)
