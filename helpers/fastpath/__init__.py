"""The fast path: how the library's multi-head attention runs fast, apart from what it computes.

Nothing here changes a result: every function computes what a readable teaching version
elsewhere in :mod:`helpers` computes (the tests compare the two), only with less memory
traffic and less Python per call. A learner can skip this package.

* :mod:`helpers.fastpath.fused_mha` -- the forward pass behind ``multi_head_attention`` and
  the layer: fused projections, the scale folded into ``W_q``, cache-sized tiles with the
  softmax done in place
* :mod:`helpers.fastpath.tiled_matmul` -- how the work is cut into tiles and row blocks
* :mod:`helpers.fastpath.threads` -- running independent tiles on several threads
* :mod:`helpers.fastpath.blas_pin` -- keeping NumPy's BLAS to one thread meanwhile, unseen by
  the user's own limits
* :mod:`helpers.fastpath.scratch` -- work arrays reused within a byte budget; large arrays
  given back to the system when freed
"""
