// A differential oracle for the check's static pod manifest reader: a manifest's bytes read the way the kubelet reads
// a static pod file, down to each container's name, command and args.
//
// The kubelet's path (kubernetes/kubernetes pkg/kubelet/config/common.go, tryDecodeSinglePod, as stored in the
// search index: `json, err := utilyaml.ToJSON(data)` then `runtime.Decode(legacyscheme.Codecs.UniversalDecoder(),
// json)`):
//  1. k8s.io/apimachinery/pkg/util/yaml ToJSON (kubernetes/kubernetes staging/src/k8s.io/apimachinery/pkg/util/yaml/
//     decoder.go at 046d201c45cebd19eb1fc4612426761c64802825): bytes whose first non-space character (unicode.IsSpace)
//     is `{` are taken as JSON unchanged; anything else goes through sigs.k8s.io/yaml YAMLToJSON.
//  2. YAMLToJSON (kubernetes-sigs/yaml yaml.go at aadfabb7d36952151672ec164d4220a6f0e31f63, yamlToJSONTarget with a
//     nil target): go-yaml v2 Unmarshal into interface{} (not the strict variant: a repeated key is not an error, the
//     last one wins), convertToJSONableObject (map keys to strings, reimplemented below), encoding/json Marshal.
//     sigs.k8s.io/yaml first forked gopkg.in/yaml.v2 v2.4.0 (b96582ba, goyaml.v2/); its non-test Go files at
//     604031b are byte for byte those of Debian's golang-gopkg-yaml.v2-dev 2.4.0-4, which this builds against; it now
//     uses go.yaml.in/yaml/v2 v2.4.2, the same code under a new module path.
//  3. The JSON decoded as a v1 Pod by the codec factory's universal decoder, built from its non-strict serializers
//     (apimachinery pkg/runtime/serializer/codec_factory.go, newCodecFactory): the apiVersion and kind found with
//     encoding/json (json.SimpleMetaFactory Interpret), then the object decoded case-sensitively (pkg/runtime/
//     serializer/json/json.go, Serializer.unmarshal: `if !s.options.Strict` then sigs.k8s.io/json
//     UnmarshalCaseSensitivePreserveInts, encoding/json's semantics otherwise: a repeated key decodes again into the
//     same struct, a JSON null leaves a string empty). Both read in the search index's current copies (no commit
//     given there); kubelets before sigs.k8s.io/json decoded with json-iterator (case-insensitive ConfigFastest at
//     kubernetes cfc58f47073fd07ccc64308acb4374d14db37fb8), which this does not model. Only the fields the check reads are decoded (spec.containers[].name, command, args), so a type
//     error elsewhere in the Pod, and the kubelet's validation (ValidatePodCreate), are not modelled: this oracle
//     accepts a superset of what the kubelet runs.
//
// stdin: one JSON string per line, the base64 of one document. stdout: one JSON object per line:
// {"ok": true, "containers": [{"name": "...", "command": [...] | null, "args": [...] | null}]} or
// {"ok": false, "stage": "yaml" | "json" | "kind" | "decode", "error": "..."}.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"unicode"

	"gopkg.in/yaml.v2"
)

type envVar struct {
	Name      string           `json:"name"`
	Value     string           `json:"value"`
	ValueFrom *json.RawMessage `json:"valueFrom"`
}

type container struct {
	Name    string   `json:"name"`
	Command []string `json:"command"`
	Args    []string `json:"args"`
	Env     []envVar `json:"env,omitempty"`
	// Command and args as the kubelet runs them, $(VAR) expanded; Unresolved: a reference named a variable not set
	// by value here (valueFrom, envFrom, or a service link the kubelet may add), which this leaves as written.
	Expanded   []string `json:"expanded"`
	Unresolved bool     `json:"unresolved"`
}

type pod struct {
	Spec struct {
		Containers []container `json:"containers"`
	} `json:"spec"`
}

type result struct {
	Ok         bool        `json:"ok"`
	Stage      string      `json:"stage,omitempty"`
	Error      string      `json:"error,omitempty"`
	Containers []container `json:"containers"`
}

// hasJSONPrefix as apimachinery's util/yaml: the first non-whitespace byte is `{`.
func hasJSONPrefix(data []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeftFunc(data, unicode.IsSpace), []byte("{"))
}

// convertToJSONableObject: sigs.k8s.io/yaml yaml.go (aadfabb7), for a nil jsonTarget (YAMLToJSON): map keys become
// strings (string, int, int64, float64 formatted as go-yaml does, bool), any other key (null, ...) is an error;
// sequences are converted element by element; scalars are left as they are.
func convertToJSONableObject(yamlObj interface{}) (interface{}, error) {
	switch typed := yamlObj.(type) {
	case map[interface{}]interface{}:
		strMap := make(map[string]interface{})
		for k, v := range typed {
			var keyString string
			switch key := k.(type) {
			case string:
				keyString = key
			case int:
				keyString = strconv.Itoa(key)
			case int64:
				keyString = strconv.FormatInt(key, 10)
			case float64:
				s := strconv.FormatFloat(key, 'g', -1, 32)
				switch s {
				case "+Inf":
					s = ".inf"
				case "-Inf":
					s = "-.inf"
				case "NaN":
					s = ".nan"
				}
				keyString = s
			case bool:
				if key {
					keyString = "true"
				} else {
					keyString = "false"
				}
			default:
				return nil, fmt.Errorf("unsupported map key of type: %s, key: %+#v, value: %+#v", reflect.TypeOf(k), k, v)
			}
			converted, err := convertToJSONableObject(v)
			if err != nil {
				return nil, err
			}
			strMap[keyString] = converted
		}
		return strMap, nil
	case []interface{}:
		arr := make([]interface{}, len(typed))
		for i, v := range typed {
			converted, err := convertToJSONableObject(v)
			if err != nil {
				return nil, err
			}
			arr[i] = converted
		}
		return arr, nil
	default:
		return yamlObj, nil
	}
}

var podFields = []string{"spec", "containers", "name", "command", "args", "env", "value", "valueFrom"}

// caseSensitive rewrites JSON so that encoding/json, which also matches a key that differs from a field's name only
// in case (or by Unicode folding: "ſpec"), matches exactly as sigs.k8s.io/json does: such keys are renamed to
// something no field matches. Keys are rewritten at every depth (elsewhere they are unknown fields anyway); repeated
// keys are kept, in order, so that encoding/json decodes each again into the same struct as the kubelet's does.
func caseSensitive(data []byte) ([]byte, error) {
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.UseNumber()
	var out bytes.Buffer
	type frame struct {
		object bool
		count  int
	}
	var stack []frame
	for {
		token, err := decoder.Token()
		if err != nil {
			if err == io.EOF {
				break
			}
			return nil, err
		}
		top := len(stack) - 1
		isKey := top >= 0 && stack[top].object && stack[top].count%2 == 0
		closing := token == json.Delim('}') || token == json.Delim(']')
		if top >= 0 && !closing {
			if stack[top].count > 0 {
				if stack[top].object && stack[top].count%2 == 1 {
					out.WriteByte(':')
				} else {
					out.WriteByte(',')
				}
			}
			stack[top].count++
		}
		switch t := token.(type) {
		case json.Delim:
			out.WriteRune(rune(t))
			if t == '{' || t == '[' {
				stack = append(stack, frame{object: t == '{'})
			} else {
				stack = stack[:top]
			}
		case string:
			if isKey {
				for _, field := range podFields {
					if t != field && strings.EqualFold(t, field) {
						t = "\x00case-variant:" + t
					}
				}
			}
			encoded, _ := json.Marshal(t)
			out.Write(encoded)
		default:
			encoded, _ := json.Marshal(t)
			out.Write(encoded)
		}
	}
	return out.Bytes(), nil
}

func read(data []byte) result {
	jsonBytes := data
	if !hasJSONPrefix(data) {
		var yamlObj interface{}
		if err := yaml.Unmarshal(data, &yamlObj); err != nil {
			return result{Stage: "yaml", Error: err.Error()}
		}
		jsonObj, err := convertToJSONableObject(yamlObj)
		if err != nil {
			return result{Stage: "json", Error: err.Error()}
		}
		if jsonBytes, err = json.Marshal(jsonObj); err != nil {
			return result{Stage: "json", Error: err.Error()}
		}
	}
	var findKind struct {
		APIVersion string `json:"apiVersion,omitempty"`
		Kind       string `json:"kind,omitempty"`
	}
	if err := json.Unmarshal(jsonBytes, &findKind); err != nil {
		return result{Stage: "kind", Error: err.Error()}
	}
	if findKind.APIVersion != "v1" || findKind.Kind != "Pod" {
		return result{Stage: "kind", Error: fmt.Sprintf("not a v1 Pod: %q %q", findKind.APIVersion, findKind.Kind)}
	}
	exact, err := caseSensitive(jsonBytes)
	if err != nil {
		return result{Stage: "decode", Error: err.Error()}
	}
	var p pod
	if err := json.Unmarshal(exact, &p); err != nil {
		return result{Stage: "decode", Error: err.Error()}
	}
	containers := p.Spec.Containers
	if containers == nil {
		containers = []container{}
	}
	for i := range containers {
		expandCommand(&containers[i])
	}
	return result{Ok: true, Containers: containers}
}

// expandCommand does what the kubelet does to a container's command and args before it runs them (kubernetes
// pkg/kubelet/kuberuntime makeEnvironmentVariables, then pkg/kubelet/container/helpers.go
// ExpandContainerCommandAndArgs): each env value expanded over the variables before it, then every word over all.
func expandCommand(c *container) {
	known := map[string]string{}
	unknown := map[string]bool{}
	for _, v := range c.Env {
		if v.ValueFrom != nil {
			unknown[v.Name] = true
			delete(known, v.Name)
			continue
		}
		value, resolved := expand(v.Value, known)
		if resolved {
			known[v.Name] = value
			delete(unknown, v.Name)
		} else {
			unknown[v.Name] = true
			delete(known, v.Name)
		}
	}
	c.Expanded = []string{}
	for _, word := range append(append([]string{}, c.Command...), c.Args...) {
		expanded, resolved := expand(word, known)
		c.Expanded = append(c.Expanded, expanded)
		c.Unresolved = c.Unresolved || !resolved
	}
}

// expand is Kubernetes' third_party/forked/golang/expansion Expand, written from its behaviour: byte by byte, `$$`
// is `$`, `$(NAME)` is NAME's value or stays as written when NAME is not set, `$(` without `)` and `$` before
// anything else stay as they are, the byte after `$` included. resolved is false when a reference was left.
func expand(input string, vars map[string]string) (string, bool) {
	var buf bytes.Buffer
	resolved := true
	checkpoint := 0
	for cursor := 0; cursor < len(input); cursor++ {
		if input[cursor] != '$' || cursor+1 >= len(input) {
			continue
		}
		buf.WriteString(input[checkpoint:cursor])
		rest := input[cursor+1:]
		advance := 1
		switch rest[0] {
		case '$':
			buf.WriteByte('$')
		case '(':
			end := strings.IndexByte(rest[1:], ')')
			if end < 0 {
				buf.WriteString("$(")
				break
			}
			name := rest[1 : end+1]
			if value, ok := vars[name]; ok {
				buf.WriteString(value)
			} else {
				buf.WriteString("$(" + name + ")")
				resolved = false
			}
			advance = end + 2
		default:
			buf.WriteString("$" + string(rest[0]))
		}
		cursor += advance
		checkpoint = cursor + 1
	}
	return buf.String() + input[checkpoint:], resolved
}

func main() {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	encoder := json.NewEncoder(out)
	for {
		line, err := in.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			break
		}
		var encoded string
		if json.Unmarshal(line, &encoded) != nil {
			os.Exit(3)
		}
		data, decodeErr := base64.StdEncoding.DecodeString(encoded)
		if decodeErr != nil {
			os.Exit(3)
		}
		if encoder.Encode(read(data)) != nil {
			os.Exit(4)
		}
	}
}
