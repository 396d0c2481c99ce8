"""Scenario keys, named as vLLM names its engine arguments (kept light: the CLI builds its options from it)."""

# key: (type, help). Ranges live in the formulas' `min:`/`max:`, not here.
KEYS = {
    "model": (str, "Catalog id, alias, or path of a Hugging Face config.json"),
    "gpu": (str, "Catalog id, or the device name nvidia-smi prints (e.g. 'NVIDIA H100 80GB HBM3')"),
    "tensor_parallel_size": (int, "GPUs each layer is split across (vLLM -tp)"),
    "pipeline_parallel_size": (int, "Pipeline stages (vLLM -pp)"),
    "dtype": (str, "Model dtype: auto, bfloat16, float16, float32"),
    "quantization": (str, "Weight format: a catalog id (gptq-int4-g128, mxfp4, ...) or vLLM's name (fp8, awq, ...)"),
    "kv_cache_dtype": (str, "KV-cache dtype: auto, fp8, bfloat16, float16"),
    "max_model_len": (int, "Longest request in tokens (default: the model's max_position_embeddings)"),
    "gpu_memory_utilization": (float, "Fraction of GPU memory vLLM may use"),
    "max_num_seqs": (int, "Sequences scheduled at once"),
    "max_num_batched_tokens": (int, "Tokens per forward pass"),
    "block_size": (int, "Tokens per KV-cache block"),
    "enforce_eager": (bool, "Disable CUDA graphs"),
    "enable_chunked_prefill": (bool, "Split long prompts over forward passes (default: the vLLM release's engine)"),
    "vllm_version": (str, "vLLM release, e.g. 0.8.5 (default: the newest in catalogs/vllm_versions.yaml)"),
    "vllm_engine": (str, "V0 or V1, where the release had both (default: the release's)"),
    "framework": (str, "vllm, tgi, llama.cpp or tensorrt-llm"),
    "gpu_memory_total": ("quantity", "Override the GPU's runtime-reported total, e.g. '79.19 GiB'"),
    "batch_size": (int, "Requests served at once (workload)"),
    "input_tokens": (float, "Prompt tokens per request (workload; a mean may be fractional)"),
    "output_tokens": (float, "Generated tokens per request (workload; a mean may be fractional)"),
    "prefix_cache_hit_fraction": (float, "Share of each prompt already in vLLM's prefix cache (workload; default 0)"),
}
