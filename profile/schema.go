package profile

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// checkSchema walks a document decoded into generic values (maps, slices,
// strings, float64s, bools and nils) and compares it with the Profile type.
//
// sigs.k8s.io/yaml alone is not strict enough: encoding/json matches keys
// case-insensitively ("Path" fills path), and the YAML-to-JSON step turns a
// number or a boolean into a string when the target field is a string, so
// an unquoted "mode: 0644" (the YAML 1.1 octal 420) would arrive as "420".
// Here keys must match exactly and scalars must have the field's type.
func checkSchema(doc any, source string) error {
	if doc == nil {
		return errorf(source, "", "document is empty; start with \"name: NAME\"")
	}
	if _, ok := doc.(map[string]any); !ok {
		return errorf(source, "", "the document is a %s, not a mapping; start with \"name: NAME\"", describe(doc))
	}
	return checkValue(doc, reflect.TypeOf(Profile{}), source, "", "")
}

// checkValue checks v against type t. at is the entry ("files[2] (/x)"),
// key the field inside it, both for messages.
func checkValue(v any, t reflect.Type, source, at, key string) error {
	if v == nil {
		return nil // an empty value is the zero value
	}
	loc := at
	if key != "" {
		if loc != "" {
			loc += ": "
		}
		loc += key
	}
	switch t.Kind() {
	case reflect.String:
		if _, ok := v.(string); !ok {
			return errorf(source, loc, "want a string, got %s; %s", describe(v), quoteHint(key, v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return errorf(source, loc, "want true or false, got %s", describe(v))
		}
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			return errorf(source, loc, "want a list (lines starting with \"- \"), got %s", describe(v))
		}
		for i, x := range list {
			elemAt := fmt.Sprintf("%s[%d]", key, i)
			if m, ok := x.(map[string]any); ok {
				if p, ok := m["path"].(string); ok && p != "" {
					elemAt += " (" + p + ")"
				}
			}
			if at != "" {
				elemAt = at + ": " + elemAt
			}
			if t.Elem().Kind() == reflect.Struct {
				if err := checkValue(x, t.Elem(), source, elemAt, ""); err != nil {
					return err
				}
				continue
			}
			if err := checkValue(x, t.Elem(), source, "", elemAt); err != nil {
				return err
			}
		}
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return errorf(source, loc, "want a mapping (key: value lines), got %s", describe(v))
		}
		fields := jsonFields(t)
		for _, k := range sortedKeys(m) {
			f, ok := fields[k]
			if !ok {
				return errorf(source, loc, "unknown field %q%s; known fields: %s", k, didYouMean(k, fields), strings.Join(fieldNames(t), ", "))
			}
			if err := checkValue(m[k], f.Type, source, loc, k); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonFields maps the JSON names of t's exported, tagged fields to them.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		out[name] = f
	}
	return out
}

// fieldNames lists t's JSON names in declaration order.
func fieldNames(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.IsExported() && name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// didYouMean suggests the field that k miscases, if any.
func didYouMean(k string, fields map[string]reflect.StructField) string {
	for name := range fields {
		if strings.EqualFold(name, k) {
			return fmt.Sprintf(" (did you mean %q? keys are case-sensitive)", name)
		}
	}
	return ""
}

// quoteHint says how to write v as the string the field wants.
func quoteHint(key string, v any) string {
	switch {
	case key == "mode":
		return "YAML reads an unquoted mode as a number (0644 is the octal 420); quote it, e.g. mode: \"0644\""
	case key == "content":
		return fmt.Sprintf("quote it and end it with a newline as the kernel does, e.g. content: %q", scalarText(v)+"\n")
	case strings.Contains(key, "["):
		return fmt.Sprintf("quote it, e.g. - %q", scalarText(v))
	}
	return fmt.Sprintf("quote it, e.g. %s: %q", key, scalarText(v))
}

// describe names the YAML type of a generic value.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "nothing"
	case string:
		return fmt.Sprintf("the string %q", x)
	case bool:
		return fmt.Sprintf("the boolean %v", x)
	case float64, int, int64:
		return "the number " + scalarText(x)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("a %T", v)
}

// scalarText formats a generic scalar as YAML wrote it, as far as the
// decoder kept it: 1000000, not 1e+06.
func scalarText(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}
