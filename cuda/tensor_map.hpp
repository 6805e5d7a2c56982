// The driver's tensor-map encoder (cuTensorMapEncodeTiled) as the sm_90a files reach it:
// through the runtime's driver entry point, so nothing links libcuda. Internal to cuda/.
#pragma once

#include <cudaTypedefs.h>

namespace tg::cuda::detail {

// Null where the driver has no such entry point (cuda/gemm_wgmma.cu).
PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder();

}  // namespace tg::cuda::detail
