// Package localefix gives the process a well-formed locale before Fyne reads it.
//
// Fyne parses $LANG while its packages initialise and logs "Error parsing user
// locale C" when it is C or POSIX (common in terminals, containers and CI), so
// every command, even `lorastudio caption list`, printed that error. Imported
// first by package main, this package's init runs before Fyne's (Go initialises
// packages in dependency order, then by import path) and maps those locales to
// en_US.UTF-8 for this process only; a real locale is left alone.
package localefix

import "os"

func init() {
	for _, name := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			continue
		}
		if isCLocale(v) {
			os.Setenv(name, "en_US.UTF-8")
		}
		return // the first one set decides, as in setlocale(3)
	}
	os.Setenv("LANG", "en_US.UTF-8")
}

// isCLocale reports whether v names the C/POSIX locale, with or without a codeset.
func isCLocale(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] == '.' || v[i] == '@' {
			v = v[:i]
			break
		}
	}
	return v == "C" || v == "POSIX"
}
