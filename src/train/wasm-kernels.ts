// The heap-view Slice/Unpack/SplitV and transposed-BatchMatMul kernels now live in the backend and
// are installed when the wasm backend starts; training keeps calling them by this name.
export { installWasmHeapKernels as installWasmTrainingKernels } from '../backend/wasm-kernels.ts';
