{
  "targets": [
    {
      "target_name": "ajar_native",
      "sources": ["native/attention.c", "native/binding.c", "native/elementwise.c", "native/gemm.c", "native/llama.c", "native/llama_binding.c", "native/pool.c", "native/train.c", "native/train_binding.c", "native/q8.c", "native/napi_args.c"],
      "cflags": ["-O3", "-std=c11", "-D_GNU_SOURCE", "-fno-strict-aliasing", "-fno-math-errno", "-Wall", "-Wno-unused-function"],
      "cflags!": ["-O2", "-O0"],
      "libraries": ["-lpthread", "-lm"],
      "xcode_settings": {
        "GCC_OPTIMIZATION_LEVEL": "3",
        "OTHER_CFLAGS": ["-std=c11"]
      }
    }
  ]
}
