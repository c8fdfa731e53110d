"""Parameter counts against transformers itself: each catalog model built on the meta device.

Ground truth: ``sum(p.numel() for p in model.parameters())`` of ``AutoModelForCausalLM.from_config``
on the meta device (no memory, no download). Documented differences:
- DeepSeek-V3/R1: transformers registers ``e_score_correction_bias`` as a buffer (58 x 256 = 14,848
  values the checkpoint stores); we compare ``params_transformers`` which leaves buffers out.
- ``quantization_config`` is dropped before building (FP8 / MXFP4 quantizers need GPU kernels); the
  count of logical parameters does not depend on it.
- DeepSeek's MTP module is not built by transformers (``num_nextn_predict_layers`` is ignored), and our
  ``params_total`` excludes it too.
"""

import pytest

torch = pytest.importorskip("torch", reason="ground truth needs the test extra (torch==2.13.0 CPU)")
transformers = pytest.importorskip("transformers")

from llmsizing import architecture as A
from llmsizing import catalog

pytestmark = pytest.mark.groundtruth

SLUGS = sorted(catalog.model_entries())


def _meta_count(config: dict) -> int:
    cfg = dict(config)
    cfg.pop("quantization_config", None)
    model_type = cfg.pop("model_type")
    cfg.pop("architectures", None)
    cfg.pop("torch_dtype", None)
    hf_cfg = transformers.AutoConfig.for_model(model_type, **cfg)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(hf_cfg)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("slug", SLUGS)
def test_params_match_transformers_meta_model(slug):
    entry = catalog.model_entries()[slug]
    spec = entry.spec
    assert _meta_count(entry_config(entry)) == A.params_transformers(spec)


def entry_config(entry) -> dict:
    from llmsizing.catalog import read_yaml_file

    return read_yaml_file(entry.path)["config"]
