package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"lorastudio/app/studio"
	"lorastudio/storage"
)

// TestGalleryListJSON records generations in a real data directory and lists them through
// the command line: newest first, every documented field, search, favourites, usage errors.
func TestGalleryListJSON(t *testing.T) {
	dir := t.TempDir()
	st, err := studio.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	neg := "blurry"
	loras := `[{"path":"/l/cat.safetensors","weight":0.75,"hash":"abc"}]`
	first, err := st.DB().AddGeneration(storage.Generation{Model: "/m/base", LorasJSON: loras, Prompt: "a red cat", Negative: &neg,
		Sampler: "euler_a", Steps: 20, CFG: 6.5, Width: 832, Height: 1216, Seed: 1234, OutputPath: "/out/1.png", FromCache: true})
	if err != nil {
		t.Fatal(err)
	}
	second, err := st.DB().AddGeneration(storage.Generation{Model: "/m/base", Prompt: "mountains", Sampler: "dpmpp_2m", Steps: 25,
		CFG: 7, Width: 1024, Height: 1024, Seed: 99, OutputPath: "/out/2.png"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetFavourite(first.ID, true); err != nil {
		t.Fatal(err)
	}
	st.Close()

	list := func(args ...string) ([]map[string]any, string) {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(append([]string{"gallery", "list", "--json", "--data-dir", dir}, args...), &out, &errb); code != 0 {
			t.Fatalf("gallery list %v: exit %d: %s", args, code, errb.String())
		}
		var v []map[string]any
		if err := json.Unmarshal(out.Bytes(), &v); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out.String())
		}
		return v, out.String()
	}
	all, raw := list()
	if len(all) != 2 || all[0]["id"].(float64) != float64(second.ID) || all[1]["id"].(float64) != float64(first.ID) {
		t.Fatalf("list = %s", raw)
	}
	for _, k := range []string{"id", "time", "prompt", "negative", "model", "loras", "seed", "steps", "cfg", "sampler", "size", "file", "cached", "favourite"} {
		if _, ok := all[1][k]; !ok {
			t.Errorf("item lacks %q: %v", k, all[1])
		}
	}
	it := all[1]
	if it["prompt"] != "a red cat" || it["negative"] != "blurry" || it["model"] != "/m/base" || it["seed"].(float64) != 1234 ||
		it["steps"].(float64) != 20 || it["cfg"].(float64) != 6.5 || it["sampler"] != "euler_a" || it["size"] != "832x1216" ||
		it["file"] != "/out/1.png" || it["cached"] != true || it["favourite"] != true {
		t.Errorf("first item = %v", it)
	}
	if l := it["loras"].([]any); len(l) != 1 || l[0].(map[string]any)["path"] != "/l/cat.safetensors" || l[0].(map[string]any)["weight"].(float64) != 0.75 {
		t.Errorf("loras = %v", it["loras"])
	}
	if all[0]["negative"] != nil || len(all[0]["loras"].([]any)) != 0 {
		t.Errorf("second item: negative %v loras %v, want null and []", all[0]["negative"], all[0]["loras"])
	}
	if favs, _ := list("--favourites"); len(favs) != 1 || favs[0]["prompt"] != "a red cat" {
		t.Errorf("--favourites = %v", favs)
	}
	if one, _ := list("--limit", "1"); len(one) != 1 || one[0]["prompt"] != "mountains" {
		t.Errorf("--limit 1 = %v", one)
	}

	var out, errb bytes.Buffer
	code := run([]string{"gallery", "list", "--search", "cat", "--data-dir", dir}, &out, &errb)
	if storage.FullTextSearch() {
		if code != 0 || !strings.Contains(out.String(), "a red cat") || strings.Contains(out.String(), "mountains") {
			t.Errorf("--search cat: exit %d\n%s%s", code, out.String(), errb.String())
		}
	} else if code != 1 || !strings.Contains(errb.String(), "sqlite_fts5") {
		t.Errorf("--search without FTS5: exit %d, stderr %s", code, errb.String())
	}
	// The global flag before the subcommand works too.
	out.Reset()
	errb.Reset()
	if code := run([]string{"--data-dir", dir, "gallery", "list"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "mountains") {
		t.Errorf("--data-dir before gallery: exit %d\n%s%s", code, out.String(), errb.String())
	}
	for _, bad := range [][]string{{"gallery"}, {"gallery", "show"}, {"gallery", "list", "extra"}, {"gallery", "list", "--limit", "-1"}} {
		errb.Reset()
		if code := run(append(bad, "--data-dir", dir), &out, &errb); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", bad, code, exitUsage, errb.String())
		}
	}
}
