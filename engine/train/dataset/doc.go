// Package dataset turns a LoRA dataset (image files with captions and kohya
// repeat counts) into what the trainer consumes, as a pure function of the
// settings and the seed: aspect-ratio buckets for SDXL, the order of each
// epoch in batches that never mix buckets, the crop and flip of every
// sample, SDXL's time ids, the pixels themselves, caption dropout and tag
// shuffling, the on-disk caches of VAE latents and text embeddings that let
// the encoders leave the device, and the dataset part of the pre-flight
// report.
//
// Nothing here keeps hidden state: a resumed run that asks for epoch e at
// step s draws exactly what the uninterrupted run drew, because every random
// choice is a hash of (seed, epoch or step, image, repeat, purpose).
//
// Reference behaviour. Buckets and batching follow kohya-ss sd-scripts
// (BucketManager.make_buckets / select_bucket, per-bucket batches, the last
// partial batch of a bucket kept); time ids follow diffusers'
// train_text_to_image_lora_sdxl.py ((original_h, original_w, crop_top,
// crop_left, target_h, target_w) with the crop measured on the resized image)
// and, for flipped samples, kohya's mirrored crop_left.
package dataset
