// Package train is the LoRA trainer: Run trains a LoRA (engine/lora's
// Network) on an SDXL UNet over a dataset (engine/train/dataset), as
// diffusers' train_text_to_image_lora_sdxl.py and kohya's sd-scripts do, and
// Preflight checks a run before any weight is loaded.
//
// A step. Each micro-batch takes its latent distributions (cached by
// dataset.Prepare, so the VAE never sits beside the UNet) and samples them
// (latent_dist.sample() × scaling_factor), adds DDPM noise at timesteps
// uniform in [0, num_train_timesteps) with the model's noise schedule
// (engine/sched; noise offset optional), runs the UNet in training mode with
// the adapters attached (gradient checkpointing on by default), and takes
// the MSE in fp32 against the noise (or the velocity under v-prediction),
// optionally min-SNR-γ weighted as kohya's apply_snr_weight. GradAccum
// micro-batches sum their gradients; then the gradients are clipped
// (clip_grad_norm_), AdamW (engine/train/optim, torch's single-tensor path
// in float32) updates a host master copy of the LoRA weights at the
// schedule's learning rate, and the weights go back to the device.
//
// Determinism. A run is a pure function of its settings, dataset and model:
// the order of each epoch is dataset.Plan(seed, epoch); micro-batch k's
// latent sample, noise, noise offset and timesteps come from torch's
// generator seeded by a hash of (seed, k), its captions from
// dataset.Caption(seed, k) and its LoRA dropout masks from (seed, k). So a
// stopped or killed run resumed from a checkpoint draws exactly what the
// uninterrupted run drew: the losses and the final weights are the same bit
// for bit (TestResumeIsBitIdentical). Save now and Sample now requests
// (RunWith's Options.Requests) are read between optimizer steps and draw
// from none of those streams, so they leave the losses and the weights as
// they were (TestRequestsKeepTheRunIdentical).
//
// The run folder:
//
//	checkpoints/lora-NNNNNN.safetensors   the LoRA after step NNNNNN (a folder for peft)
//	checkpoints/state-NNNNNN.safetensors  the resumable state: LoRA weights fp32,
//	                                       AdamW's moments, step, data position,
//	                                       settings, model and dataset identity
//	samples/step-NNNNNN-P.png             sample P of step NNNNNN
//	cache/                                latents and text embeddings (unless CacheDir)
//
// Every file is written atomically (temporary file, fsync, rename), the
// state after its LoRA file, and the two newest states are kept, so a
// crash, a full disk or a damaged newest state always leaves a complete
// checkpoint to resume from.
//
// Memory. The frozen UNet stays fp16 on the device (fp16Weights converts an
// fp32 checkpoint while loading), the LoRA weights and gradients are fp32
// on the device, the master weights and Adam's moments fp32 on the host;
// Preflight's Memory documents the estimate.
package train
