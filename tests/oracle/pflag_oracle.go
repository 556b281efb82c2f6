// A differential oracle for the check's flag reader: the real spf13/pflag, with Kubernetes' word-separator
// normalization, reading argv the way kube-apiserver does.
//
// stdin: one JSON line {"bools": [...], "strings": [...]} naming the flags to define, then one JSON array per line,
// each an argv (arguments after the program) as base64 strings. stdout: one JSON object per argv:
// {"ok": true, "set": bool, "value": base64} for --client-ca-file, or {"ok": false, "error": "..."}.
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

type spec struct {
	Bools   []string `json:"bools"`
	Strings []string `json:"strings"`
}

type result struct {
	Ok    bool   `json:"ok"`
	Set   bool   `json:"set"`
	Value string `json:"value"`
	Error string `json:"error,omitempty"`
}

func wordSepNormalize(f *pflag.FlagSet, name string) pflag.NormalizedName {
	if strings.Contains(name, "_") {
		return pflag.NormalizedName(strings.Replace(name, "_", "-", -1))
	}
	return pflag.NormalizedName(name)
}

func parse(s spec, args []string) result {
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetNormalizeFunc(wordSepNormalize)
	for _, name := range s.Bools {
		switch name {
		case "help":
			fs.BoolP("help", "h", false, "")
		case "version":
			fs.String("version", "false", "")
			fs.Lookup("version").NoOptDefVal = "true"
		default:
			fs.Bool(name, false, "")
		}
	}
	for _, name := range s.Strings {
		if name == "v" {
			fs.StringP("v", "v", "0", "")
		} else {
			fs.String(name, "", "")
		}
	}
	if err := fs.Parse(args); err != nil {
		return result{Ok: false, Error: err.Error()}
	}
	flag := fs.Lookup("client-ca-file")
	return result{Ok: true, Set: flag.Changed, Value: base64.StdEncoding.EncodeToString([]byte(flag.Value.String()))}
}

func main() {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriter(os.Stdout)
	encoder := json.NewEncoder(out)
	first, err := in.ReadBytes('\n')
	if err != nil {
		os.Exit(2)
	}
	var s spec
	if json.Unmarshal(first, &s) != nil {
		os.Exit(2)
	}
	for {
		line, err := in.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			break
		}
		var encoded []string
		if json.Unmarshal(line, &encoded) != nil {
			os.Exit(3)
		}
		args := make([]string, len(encoded))
		for i, e := range encoded {
			raw, _ := base64.StdEncoding.DecodeString(e)
			args[i] = string(raw)
		}
		encoder.Encode(parse(s, args))
		out.Flush()
	}
}
