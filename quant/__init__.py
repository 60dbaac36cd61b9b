"""fp32 bundle -> quantized bundle with onnxruntime's own quantizers (needs the [export] extra).

recipes.py names the recipes (int8, int4, int4-gptq, fp16) as pure data; graphs.py rewrites one
graph per recipe (8-bit and 4-bit MatMulNBits, the tied INT4 table shared,
GPTQ, fp16 with the official encoder clamp); quantize.py writes the new bundle atomically;
quality.py measures it against its fp32 bundle (the report inside it); cli.py is
``qwen-asr-edge quantize``. ``qwen_asr_edge.export.build.build_bundle`` runs export and quantize
in one call.
"""
