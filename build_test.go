package main

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestBuildScript runs the build command of make build and the Dockerfile
// (scripts/build.sh) and checks what it promises: the version given is
// the one --version prints, and the binary is static (no ELF interpreter),
// so it runs on distroless static.
func TestBuildScript(t *testing.T) {
	out := filepath.Join(t.TempDir(), "finproxy")
	const version = "v9.8.7-build-test"
	build := exec.Command("./scripts/build.sh", out, version)
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("scripts/build.sh: %v\n%s", err, b)
	}
	got, err := exec.Command(out, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", out, err)
	}
	if f := strings.Fields(string(got)); len(f) != 3 || f[0] != "finproxy" || f[1] != version || !strings.HasPrefix(f[2], "go1.") {
		t.Errorf("--version printed %q, want \"finproxy %s go1.…\"", got, version)
	}

	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the binary has an ELF interpreter (PT_INTERP): it is dynamically linked")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary imports shared libraries %v", libs)
	}

	if b, err := exec.Command("./scripts/build.sh", out).CombinedOutput(); err == nil {
		t.Errorf("scripts/build.sh without a version succeeded: %s", b)
	}
}

// TestDockerfile: the image runs as a numeric non-root user (Kubernetes'
// runAsNonRoot can only verify a number), exposes the two listeners, and
// builds with scripts/build.sh, stamping the VERSION build argument.
func TestDockerfile(t *testing.T) {
	file, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var user, expose []string
	var builds int
	versionArg := false
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "USER":
			user = f[1:]
		case "EXPOSE":
			expose = append(expose, f[1:]...)
		case "ARG":
			versionArg = versionArg || strings.HasPrefix(f[1], "VERSION")
		case "RUN":
			if slices.Contains(f, "./scripts/build.sh") {
				builds++
				if !strings.Contains(sc.Text(), "${VERSION}") {
					t.Errorf("the build does not stamp ${VERSION}: %s", sc.Text())
				}
			}
			if slices.Contains(f, "build") && slices.Contains(f, "go") {
				t.Errorf("a second build command besides scripts/build.sh: %s", sc.Text())
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(user, []string{"65532:65532"}) {
		t.Errorf("USER %v, want the numeric 65532:65532", user)
	}
	slices.Sort(expose)
	if !slices.Equal(expose, []string{"8080", "9090"}) {
		t.Errorf("EXPOSE %v, want 8080 9090", expose)
	}
	if builds != 1 {
		t.Errorf("%d RUN lines call ./scripts/build.sh, want 1", builds)
	}
	if !versionArg {
		t.Errorf("no ARG VERSION")
	}
}

// TestMakeBuildUsesScript: make build builds bin/finproxy with the same
// script, stamping the Makefile's VERSION.
func TestMakeBuildUsesScript(t *testing.T) {
	b, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	_, target, ok := strings.Cut(string(b), "\nbuild:\n")
	if !ok {
		t.Fatal("Makefile has no build target")
	}
	target, _, _ = strings.Cut(target, "\n\n")
	if !strings.Contains(target, "./scripts/build.sh $(BIN) $(VERSION)") {
		t.Errorf("make build does not run ./scripts/build.sh $(BIN) $(VERSION):\n%s", target)
	}
	if !strings.Contains(string(b), "git describe --tags --always --dirty") {
		t.Errorf("the Makefile's VERSION does not come from git describe")
	}
}
