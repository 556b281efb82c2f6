// Helm's template rendering as the Datadog chart uses it on deploy/helm/values.yaml, with Go's own text/template.
//
// Reads one JSON object on stdin: {"templates": {name: text}, "execute": name, "values": {...}} and prints what
// the named template renders, or exits 1 with the error on stderr. It reproduces what Helm's engine does around
// text/template (helm/helm pkg/engine/engine.go, commit 0052fe642c606b6020280d81fe7bf4f5d32b849a):
//   - templates are parsed into one set named "gotpl" with Option("missingkey=zero");
//   - `tpl TEXT CONTEXT` parses TEXT as a new template beside the others and executes it with CONTEXT;
//   - `required MSG VALUE` fails on nil or "" (Helm's own function, not sprig);
//   - every "<no value>" is deleted from the output.
//
// Of sprig, only what the chart's check-cluster-name template calls: `fail` and `regexMatch`
// (Masterminds/sprig: errors.New(msg); regexp.MatchString(regex, s)). len and gt are text/template built-ins.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"text/template"
)

type request struct {
	Templates map[string]string      `json:"templates"`
	Execute   string                 `json:"execute"`
	Values    map[string]interface{} `json:"values"`
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "bad request:", err)
		os.Exit(2)
	}
	out, err := render(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Stdout.WriteString(out)
}

func render(req request) (out string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("rendering template failed: %v", r)
		}
	}()
	t := template.New("gotpl").Option("missingkey=zero")
	counter := 0
	funcs := template.FuncMap{
		"required": func(warn string, val interface{}) (interface{}, error) {
			if val == nil {
				return val, errors.New(warn)
			} else if _, ok := val.(string); ok && val == "" {
				return val, errors.New(warn)
			}
			return val, nil
		},
		"fail": func(msg string) (string, error) { return "", errors.New(msg) },
		"regexMatch": func(regex string, s string) bool {
			match, _ := regexp.MatchString(regex, s)
			return match
		},
	}
	funcs["tpl"] = func(text string, context interface{}) (string, error) {
		counter++
		inner, err := t.New(fmt.Sprintf("tpl-%d", counter)).Parse(text)
		if err != nil {
			return "", fmt.Errorf("error during tpl function execution for %q: %w", text, err)
		}
		var buf strings.Builder
		if err := inner.Execute(&buf, context); err != nil {
			return "", fmt.Errorf("error during tpl function execution for %q: %w", text, err)
		}
		return buf.String(), nil
	}
	t.Funcs(funcs)
	for name, text := range req.Templates {
		if _, err := t.New(name).Parse(text); err != nil {
			return "", err
		}
	}
	context := map[string]interface{}{
		"Values":   req.Values,
		"Release":  map[string]interface{}{"Name": "datadog-agent", "Namespace": "default"},
		"Template": map[string]interface{}{"Name": req.Execute, "BasePath": "datadog/templates"},
	}
	var buf strings.Builder
	if err := t.ExecuteTemplate(&buf, req.Execute, context); err != nil {
		return "", err
	}
	return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
}
