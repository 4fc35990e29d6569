// Summaries of repeated measurements: { median, min, max }.
export const stat = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return { median: s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2, min: s[0], max: s.at(-1) };
};
