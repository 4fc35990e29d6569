// JSON Schema to GBNF: the grammar of the JSON texts a schema accepts, for constrained output.
//
// The common subset is supported: "type" (string, number, integer, boolean, null, object, array,
// or a list of them), "enum", "const", objects with "properties" and "required" (the properties
// come in the schema's order, required or not; no others, as with "additionalProperties": false,
// unless the object has no "properties" and "additionalProperties" is a schema or true), arrays
// with "items", "prefixItems", "minItems" and "maxItems", strings with "minLength" and
// "maxLength", "anyOf" and "oneOf" (as alternatives: oneOf's exclusivity is not enforced), "$ref"
// to "#/$defs/..." or "#/definitions/..." (recursion included), and the annotations (title,
// description, default, examples, ...). Any other keyword (pattern, format, minimum, allOf, ...)
// is refused with a rill::Error naming it and where it is, rather than produce output the schema
// would reject. The output is compact: at most one space between tokens of the JSON.
#pragma once

#include <string>
#include <string_view>

namespace rill {

// The GBNF of the schema's JSON texts, start rule "root". Throws rill::Error for a schema that is
// not JSON, or uses what is not supported.
std::string json_schema_to_gbnf(std::string_view schema);

// The GBNF of any JSON object (OpenAI's response_format { type: "json_object" }).
std::string json_object_gbnf();

}  // namespace rill
