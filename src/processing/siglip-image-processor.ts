/**
 * SiglipImageProcessor — transformers 4.47 models/siglip/image_processing_siglip.py: optional
 * `convert("RGB")` (`do_convert_rgb` null means none), resize both sides to `size.height ×
 * size.width` (aspect not kept), rescale, normalize.
 */
import { TfvlmError } from '../errors.ts';
import { type Bitmap, convertToRGB } from '../io/bitmap.ts';
import type { SiglipImageProcessorConfig } from './preprocessor-config.ts';
import { resize } from './resample.ts';
import { type StackedImages, checkImageList, stackImages } from './clip-image-processor.ts';

export class SiglipImageProcessor {
  constructor(readonly config: SiglipImageProcessorConfig) {}

  processImage(image: Bitmap): Bitmap {
    const cfg = this.config;
    let img = cfg.do_convert_rgb ? convertToRGB(image) : image;
    if (img.mode === 'L' || img.mode === 'LA') {
      throw new TfvlmError(`SiglipImageProcessor: a ${img.mode} image needs do_convert_rgb: true, which this config leaves unset (transformers cannot infer its channels either): pass --convert-rgb (convertRgb: true)`);
    }
    if (cfg.do_resize) img = resize(img, cfg.size.width, cfg.size.height, cfg.resample);
    return img;
  }

  /** `pixel_values` `[N, C, height, width]`. */
  preprocess(images: Bitmap | Bitmap[]): StackedImages {
    const list = checkImageList(images, 'SiglipImageProcessor');
    return stackImages(list.map((img) => this.processImage(img)), this.config, 'SiglipImageProcessor');
  }
}
