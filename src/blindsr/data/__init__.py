"""Image files and datasets: the only package that touches PIL, uint8 pixels or HWC arrays.

- :mod:`blindsr.data.images`: dataset images ↔ ``(3, H, W)`` float tensors (``read_image``, ``write_image``, ...),
  what benchmarks, metrics and training use.
- :mod:`blindsr.data.user_images`: images as users have them, gray, alpha, 16 bits, EXIF and ICC profile kept from
  input to output (``read_image_any``, ``write_image_like``, ``LoadedImage``, ...), for ``blindsr upscale``, the
  web demo and :class:`blindsr.Upscaler`.
- :mod:`blindsr.data.png16`: 16-bit colour PNG, which Pillow cannot hold, through pypng.
- :mod:`blindsr.data.image_errors`: the one-line ``ImageReadError`` / ``ImageWriteError`` of all of them.
- :mod:`blindsr.data.benchmark`, :mod:`blindsr.data.hr_patches`, :mod:`blindsr.data.patch_sampler`: benchmark sets
  and training crops.
"""
