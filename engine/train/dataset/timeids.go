package dataset

// TimeIDs returns SDXL's add_time_ids of a sample cut as e into bucket:
// (original_h, original_w, crop_top, crop_left, target_h, target_w), as
// diffusers' train_text_to_image_lora_sdxl.py computes them — the image
// file's true size, the crop's top-left corner on the resized image, the
// size trained at. For a flipped sample the crop is measured in the mirrored
// image, crop_left = resized_w − crop_left − target_w, as kohya does (and as
// diffusers gets by flipping before it crops).
func TimeIDs(e Entry, bucket Size) [6]float32 {
	left := e.CropLeft
	if e.Flip {
		left = e.ResizedW - e.CropLeft - bucket.W
	}
	return [6]float32{
		float32(e.OrigH), float32(e.OrigW),
		float32(e.CropTop), float32(left),
		float32(bucket.H), float32(bucket.W),
	}
}
