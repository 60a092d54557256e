"""Workers: arq jobs that run diffusers pipelines (inference queue) and pixel work (post queue)."""
