// The browser bundle's `tfvlm:webgpu` module (scripts/build-web.mjs makes it): it imports
// @tensorflow/tfjs-backend-webgpu (which registers the 'webgpu' backend) when that package is
// installed, and says whether it did.
declare module 'tfvlm:webgpu' {
  export const bundled: boolean;
}
