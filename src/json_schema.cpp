#include "src/json_schema.h"

#include <cctype>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "rill/error.h"

namespace rill {

namespace {

using Json = nlohmann::ordered_json;  // properties keep the schema's order

// The rules every JSON grammar shares. Numbers have at most 16 digits before the point, 16
// after and 2 in the exponent, so that a sampler cannot run on through digits forever and every
// number is a finite double (28e525 would parse as Infinity).
constexpr const char* kPrimitives =
    "space ::= \" \"?\n"
    "char ::= [^\"\\\\\\x7F\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4})\n"
    "string ::= \"\\\"\" char* \"\\\"\" space\n"
    "integer ::= \"-\"? ([0-9] | [1-9] [0-9]{1,15}) space\n"
    "number ::= \"-\"? ([0-9] | [1-9] [0-9]{1,15}) (\".\" [0-9]{1,16})? ([eE] [-+]? [0-9]{1,2})? space\n"
    "boolean ::= (\"true\" | \"false\") space\n"
    "null ::= \"null\" space\n"
    "value ::= object | array | string | number | boolean | null\n"
    "object ::= \"{\" space (string \":\" space value (\",\" space string \":\" space value)*)? \"}\" space\n"
    "array ::= \"[\" space (value (\",\" space value)*)? \"]\" space\n";

// A GBNF literal spelling these bytes.
std::string literal(std::string_view s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') out += '\\', out += char(c);
        else if (c < 0x20 || c == 0x7f) out += strprintf("\\x%02X", c);
        else out += char(c);
    }
    return out + "\"";
}

// A rule name from a schema's name for a part: letters, digits and '-'.
std::string rule_name(std::string_view s) {
    std::string out;
    for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) ? c : '-');
    return out.empty() ? "x" : out;
}

class Converter {
public:
    explicit Converter(const Json& root) : root_(root) {}

    std::string run() {
        const std::string body = expr(root_, "root", "#");
        std::string out = "root ::= " + body + "\n";
        for (const auto& [name, rule] : order_) out += name + " ::= " + rule + "\n";
        return out + kPrimitives;
    }

private:
    // The GBNF expression for the values the schema accepts; `name` seeds the names of the rules
    // it needs, `where` is its JSON pointer for messages.
    std::string expr(const Json& s, const std::string& name, const std::string& where) {
        if (s.is_boolean()) {
            if (s.get<bool>()) return "value";
            RILL_FAIL("json schema: the schema 'false' at %s accepts nothing", where.c_str());
        }
        if (!s.is_object()) RILL_FAIL("json schema: expected an object at %s", where.c_str());
        check_keywords(s, where);

        if (s.contains("$ref")) return ref(s["$ref"], where);
        if (s.contains("const")) return literal(s["const"].dump()) + " space";
        if (s.contains("enum")) {
            const Json& e = s["enum"];
            if (!e.is_array() || e.empty()) RILL_FAIL("json schema: 'enum' at %s must be a non-empty array", where.c_str());
            std::string out = "(";
            for (size_t i = 0; i < e.size(); ++i) out += (i ? " | " : "") + literal(e[i].dump());
            return out + ") space";
        }
        for (const char* key : {"anyOf", "oneOf"}) {
            if (!s.contains(key)) continue;
            const Json& alts = s[key];
            if (!alts.is_array() || alts.empty()) RILL_FAIL("json schema: '%s' at %s must be a non-empty array", key, where.c_str());
            std::string out = "(";
            for (size_t i = 0; i < alts.size(); ++i)
                out += (i ? " | " : "") + expr(alts[i], name + "-" + std::to_string(i), where + "/" + key + "/" + std::to_string(i));
            return out + ")";
        }
        if (!s.contains("type")) {
            // Untyped: what the keywords say, or any value.
            if (s.contains("properties") || s.contains("additionalProperties")) return object(s, name, where);
            if (s.contains("items") || s.contains("prefixItems")) return array(s, name, where);
            return "value";
        }
        const Json& t = s["type"];
        if (t.is_string()) return typed(s, t.get<std::string>(), name, where);
        if (!t.is_array() || t.empty()) RILL_FAIL("json schema: 'type' at %s must be a string or a non-empty array", where.c_str());
        std::string out = "(";
        for (size_t i = 0; i < t.size(); ++i) {
            if (!t[i].is_string()) RILL_FAIL("json schema: 'type' at %s lists a non-string", where.c_str());
            out += (i ? " | " : "") + typed(s, t[i].get<std::string>(), name + "-" + t[i].get<std::string>(), where);
        }
        return out + ")";
    }

    std::string typed(const Json& s, const std::string& type, const std::string& name, const std::string& where) {
        if (type == "string") return string(s, where);
        if (type == "integer" || type == "number" || type == "boolean" || type == "null") return type;
        if (type == "object") return object(s, name, where);
        if (type == "array") return array(s, name, where);
        RILL_FAIL("json schema: unknown type '%s' at %s", type.c_str(), where.c_str());
    }

    std::string string(const Json& s, const std::string& where) {
        if (!s.contains("minLength") && !s.contains("maxLength")) return "string";
        const long lo = count(s, "minLength", 0, where);
        const long hi = count(s, "maxLength", -1, where);
        if (hi >= 0 && hi < lo) RILL_FAIL("json schema: 'maxLength' at %s is below 'minLength'", where.c_str());
        return "\"\\\"\" char{" + std::to_string(lo) + "," + (hi >= 0 ? std::to_string(hi) : "") + "} \"\\\"\" space";
    }

    std::string object(const Json& s, const std::string& name, const std::string& where) {
        const Json props = s.value("properties", Json::object());
        if (!props.is_object()) RILL_FAIL("json schema: 'properties' at %s must be an object", where.c_str());
        const Json extra = s.value("additionalProperties", Json(props.empty()));
        if (props.empty()) {
            // A map: any keys, each value as additionalProperties says.
            if (extra.is_boolean() && !extra.get<bool>()) return define(name, "\"{\" space \"}\" space");
            const std::string v = extra.is_boolean() ? "value" : expr(extra, name + "-value", where + "/additionalProperties");
            return define(name, "\"{\" space (string \":\" space " + v + " (\",\" space string \":\" space " + v + ")*)? \"}\" space");
        }
        if (!(extra.is_boolean() && !extra.get<bool>()))
            RILL_FAIL("json schema: 'additionalProperties' at %s: with 'properties', only false is supported "
                      "(the output has the listed properties alone)", where.c_str());
        std::set<std::string> required;
        if (s.contains("required")) {
            if (!s["required"].is_array()) RILL_FAIL("json schema: 'required' at %s must be an array", where.c_str());
            for (const Json& r : s["required"]) {
                if (!r.is_string() || !props.contains(r.get<std::string>()))
                    RILL_FAIL("json schema: 'required' at %s names %s, which is not in 'properties'", where.c_str(), r.dump().c_str());
                required.insert(r.get<std::string>());
            }
        }
        // Each property as `"key": value`; then the sequence, in the schema's order, where the
        // optional ones may be left out and a comma comes only between two that are there.
        std::vector<std::pair<std::string, bool>> kv;  // rule, required
        for (const auto& [key, sub] : props.items()) {
            const std::string v = expr(sub, name + "-" + rule_name(key), where + "/properties/" + key);
            kv.push_back({define(name + "-" + rule_name(key) + "-kv", literal(Json(key).dump()) + " space \":\" space " + v),
                          required.count(key) != 0});
        }
        // after(i): the rest from property i on, when something came before (each begins ",").
        // first(i): the rest from property i on, when nothing came before.
        std::vector<std::string> after(kv.size() + 1), first(kv.size() + 1);
        for (size_t i = kv.size(); i-- > 0;) {
            const std::string rest = after[i + 1].empty() ? "" : " " + after[i + 1];
            const std::string one = "\",\" space " + kv[i].first;
            after[i] = kv[i].second ? one + rest : "(" + one + ")?" + rest;
            const std::string start = kv[i].first + rest;
            if (kv[i].second || first[i + 1].empty()) first[i] = kv[i].second ? start : "(" + start + ")?";
            else first[i] = define(name + "-from-" + std::to_string(i), start + " | " + inner(first[i + 1]));
        }
        return define(name, "\"{\" space " + first[0] + " \"}\" space");
    }

    // first(i+1) where it stands as an alternative: an optional group is its own alternatives.
    static std::string inner(const std::string& e) {
        if (e.size() > 3 && e.front() == '(' && e.compare(e.size() - 2, 2, ")?") == 0) return e.substr(1, e.size() - 3) + " | \"\"";
        return e;
    }

    std::string array(const Json& s, const std::string& name, const std::string& where) {
        const long lo = count(s, "minItems", 0, where);
        const long hi = count(s, "maxItems", -1, where);
        if (hi >= 0 && hi < lo) RILL_FAIL("json schema: 'maxItems' at %s is below 'minItems'", where.c_str());
        std::vector<std::string> fixed;
        if (s.contains("prefixItems")) {
            const Json& p = s["prefixItems"];
            if (!p.is_array()) RILL_FAIL("json schema: 'prefixItems' at %s must be an array", where.c_str());
            for (size_t i = 0; i < p.size(); ++i)
                fixed.push_back(expr(p[i], name + "-" + std::to_string(i), where + "/prefixItems/" + std::to_string(i)));
        }
        const bool more = !(s.contains("items") && s["items"].is_boolean() && !s["items"].get<bool>());
        const std::string item = s.contains("items") && !s["items"].is_boolean()
                                     ? expr(s["items"], name + "-item", where + "/items") : "value";
        // n items: the fixed ones first (as many as there are room for), then the others.
        const long n_fixed = long(fixed.size());
        if (!more && lo > n_fixed)
            RILL_FAIL("json schema: 'minItems' at %s asks for more items than 'prefixItems' allows", where.c_str());
        const long max = !more ? (hi >= 0 ? std::min(hi, n_fixed) : n_fixed) : hi;  // -1: no bound
        // seq(k): items k.. up to max, at least lo in all; each but the first begins ",".
        std::function<std::string(long, bool)> seq = [&](long k, bool lead) -> std::string {
            if (max >= 0 && k >= max) return "";
            const std::string sep = lead ? "\",\" space " : "";
            if (k < n_fixed) {
                const std::string rest = seq(k + 1, true);
                const std::string one = sep + fixed[size_t(k)] + (rest.empty() ? "" : " " + rest);
                return k < lo ? one : "(" + one + ")?";
            }
            // From here every item is `item`: need lo - k more, up to max - k more.
            const long need = std::max(0L, lo - k);
            const std::string more_items = "(\",\" space " + item + ")";
            std::string out;
            if (need == 0) {
                if (max >= 0 && max - k == 0) return "";
                const std::string tail = max >= 0 ? more_items + "{0," + std::to_string(max - k - 1) + "}" : more_items + "*";
                out = "(" + sep + item + " " + tail + ")?";
            } else {
                const std::string tail = more_items + "{" + std::to_string(need - 1) + "," +
                                         (max >= 0 ? std::to_string(max - k - 1) : "") + "}";
                out = sep + item + " " + tail;
            }
            return out;
        };
        return define(name, "\"[\" space " + seq(0, false) + " \"]\" space");
    }

    std::string ref(const Json& r, const std::string& where) {
        if (!r.is_string()) RILL_FAIL("json schema: '$ref' at %s must be a string", where.c_str());
        const std::string target = r.get<std::string>();
        auto it = refs_.find(target);
        if (it != refs_.end()) return it->second;
        std::string section, key;
        for (const char* prefix : {"#/$defs/", "#/definitions/"})
            if (target.rfind(prefix, 0) == 0) section = std::string(prefix).substr(2, std::string(prefix).size() - 3), key = target.substr(std::string(prefix).size());
        if (section.empty() || key.empty() || key.find('/') != std::string::npos)
            RILL_FAIL("json schema: '$ref' %s at %s: only references to #/$defs/NAME or #/definitions/NAME are supported",
                      target.c_str(), where.c_str());
        if (!root_.contains(section) || !root_[section].contains(key))
            RILL_FAIL("json schema: '$ref' %s at %s names a definition the schema does not have", target.c_str(), where.c_str());
        // Named before it is read, so that a definition may refer to itself.
        const std::string name = unique("def-" + rule_name(key));
        refs_[target] = name;
        order_.push_back({name, ""});
        const size_t slot = order_.size() - 1;
        const std::string body = expr(root_[section][key], name, target);
        order_[slot].second = body;
        return name;
    }

    // A rule for the expression, named from `name` (a body met before reuses its rule).
    std::string define(const std::string& name, const std::string& body) {
        auto it = by_body_.find(body);
        if (it != by_body_.end()) return it->second;
        const std::string n = unique(rule_name(name));
        order_.push_back({n, body});
        by_body_[body] = n;
        return n;
    }

    std::string unique(const std::string& name) {
        static const std::set<std::string> reserved = {"root", "space", "char", "string", "integer", "number",
                                                       "boolean", "null", "value", "object", "array"};
        std::string n = name;
        for (int i = 2; reserved.count(n) || taken_.count(n); ++i) n = name + "-" + std::to_string(i);
        taken_.insert(n);
        return n;
    }

    static long count(const Json& s, const char* key, long otherwise, const std::string& where) {
        if (!s.contains(key)) return otherwise;
        const Json& v = s[key];
        if (!v.is_number_integer() || v.get<long>() < 0)
            RILL_FAIL("json schema: '%s' at %s must be a non-negative integer", key, where.c_str());
        if (v.get<long>() > 10000) RILL_FAIL("json schema: '%s' at %s is above the supported 10000", key, where.c_str());
        return v.get<long>();
    }

    static void check_keywords(const Json& s, const std::string& where) {
        static const std::set<std::string> known = {
            "type", "enum", "const", "properties", "required", "additionalProperties", "items", "prefixItems",
            "minItems", "maxItems", "minLength", "maxLength", "anyOf", "oneOf", "$ref", "$defs", "definitions",
            // annotations: they do not change which values are valid
            "$schema", "$id", "$comment", "title", "description", "default", "examples", "deprecated", "readOnly",
            "writeOnly"};
        for (const auto& [key, value] : s.items())
            if (!known.count(key))
                RILL_FAIL("json schema: keyword '%s' at %s is not supported (supported: type, enum, const, properties, "
                          "required, additionalProperties, items, prefixItems, minItems, maxItems, minLength, maxLength, "
                          "anyOf, oneOf, $ref to $defs)", key.c_str(), where.c_str());
        if (s.contains("$ref") && s.size() > 1)
            for (const auto& [key, value] : s.items())
                if (key != "$ref" && key != "$defs" && key != "definitions" && key != "title" && key != "description" &&
                    key != "$comment" && key != "$schema" && key != "$id")
                    RILL_FAIL("json schema: keyword '%s' beside '$ref' at %s is not supported", key.c_str(), where.c_str());
    }

    const Json& root_;
    std::vector<std::pair<std::string, std::string>> order_;  // rules in the order defined
    std::map<std::string, std::string> by_body_, refs_;
    std::set<std::string> taken_;
};

}  // namespace

std::string json_schema_to_gbnf(std::string_view schema) {
    Json root;
    try {
        root = Json::parse(schema);
    } catch (const nlohmann::json::exception& e) {
        RILL_FAIL("json schema: not JSON: %s", e.what());
    }
    return Converter(root).run();
}

std::string json_object_gbnf() {
    return std::string("root ::= object\n") + kPrimitives;
}

}  // namespace rill
