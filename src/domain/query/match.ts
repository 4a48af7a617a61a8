import type { Match, MatchReason } from '../result.ts';
import { cocoLabelForTerm } from './coco.ts';

/** Query matching (`docs/api.md`, the answer's `matches`): the words of a search query against what each clip holds. */

export const DEFAULT_MIN_CONFIDENCE = 0.5;

export interface ParsedQuery {
  /** COCO labels the query asks for, matched against detected objects. */
  labels: string[];
  /** The remaining content words (singular, lower-case), matched against transcripts. */
  words: string[];
}

/** What matching needs of a clip; a `ClipResult` is one. */
export interface MatchableClip {
  index: number;
  start_s: number | null;
  end_s: number | null;
  transcript: string | null;
  objects: ReadonlyArray<{ label: string; max_confidence: number }>;
}

export interface MatchOptions {
  /** A detected object counts only at or above this confidence. */
  minConfidence?: number;
}

const STOP_WORDS = new Set([
  // the words of asking
  'find',
  'show',
  'me',
  'give',
  'get',
  'list',
  'search',
  'look',
  'looking',
  'see',
  'seen',
  'want',
  'need',
  'please',
  'can',
  'could',
  'would',
  'i',
  'you',
  'we',
  'us',
  'my',
  'your',
  'our',
  // the words for what is searched
  'scene',
  'scenes',
  'clip',
  'clips',
  'video',
  'videos',
  'frame',
  'frames',
  'shot',
  'shots',
  'moment',
  'moments',
  'segment',
  'segments',
  'part',
  'parts',
  'footage',
  // function words
  'with',
  'without',
  'where',
  'when',
  'which',
  'what',
  'who',
  'whose',
  'the',
  'a',
  'an',
  'of',
  'in',
  'on',
  'at',
  'by',
  'from',
  'into',
  'onto',
  'inside',
  'near',
  'about',
  'and',
  'or',
  'but',
  'not',
  'no',
  'any',
  'all',
  'every',
  'each',
  'some',
  'that',
  'this',
  'these',
  'those',
  'there',
  'here',
  'it',
  'its',
  'they',
  'them',
  'their',
  'is',
  'are',
  'was',
  'were',
  'be',
  'been',
  'being',
  'am',
  'do',
  'does',
  'did',
  'has',
  'have',
  'having',
  'had',
  'for',
  'to',
  'as',
  'if',
  'so',
  'than',
  'then',
  'just',
  'only',
  'also',
  'more',
  'most',
  'many',
  'much',
  'few',
  'other',
  'containing',
  'contains',
  'contain',
  'include',
  'includes',
  'including',
  'featuring',
  'appear',
  'appears',
  'appearing',
  'visible',
  'shown',
  'showing',
  // counts are not something a clip can be matched on
  'one',
  'two',
  'three',
  'four',
  'five',
  'six',
  'seven',
  'eight',
  'nine',
  'ten',
  'eleven',
  'twelve',
  'several',
]);

const IRREGULAR_PLURALS: Record<string, string> = {
  people: 'person',
  persons: 'person',
  men: 'man',
  women: 'woman',
  children: 'child',
  feet: 'foot',
  teeth: 'tooth',
  geese: 'goose',
  mice: 'mouse',
  oxen: 'ox',
  knives: 'knife',
  wives: 'wife',
  lives: 'life',
  leaves: 'leaf',
  wolves: 'wolf',
  shelves: 'shelf',
  halves: 'half',
  calves: 'calf',
  loaves: 'loaf',
  thieves: 'thief',
  scarves: 'scarf',
  buses: 'bus',
  gases: 'gas',
  lenses: 'lens',
  potatoes: 'potato',
  tomatoes: 'tomato',
  heroes: 'hero',
  echoes: 'echo',
  movies: 'movie',
  cookies: 'cookie',
  zombies: 'zombie',
  calories: 'calorie',
};

const UNCHANGED = new Set(['scissors', 'series', 'species', 'news', 'lens']);

/**
 * Reduces an English plural to its singular with a few rules and exceptions. It need not be
 * perfect: queries and transcripts go through the same reduction, so they meet either way.
 */
export function singularize(word: string): string {
  const irregular = IRREGULAR_PLURALS[word];
  if (irregular !== undefined) return irregular;
  if (word.length <= 3 || UNCHANGED.has(word)) return word;
  if (word.endsWith('ss') || word.endsWith('us') || word.endsWith('is')) return word;
  if (word.endsWith('ies') && word.length > 4) return `${word.slice(0, -3)}y`;
  if (/(?:ss|sh|ch|x|zz)es$/.test(word)) return word.slice(0, -2);
  if (word.endsWith('s')) return word.slice(0, -1);
  return word;
}

/** Lower-case word tokens: punctuation separates words, apostrophes vanish ("don't" → "dont"). */
function tokenize(text: string): string[] {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/['\u2019]/g, '')
    .split(/[^\p{L}\p{N}]+/u)
    .filter((token) => token.length > 0);
}

/** The words of a text as matching sees them: tokenized and reduced to the singular. */
export function normalizeWords(text: string): string[] {
  return tokenize(text).map(singularize);
}

function isIgnorable(token: string, singular: string): boolean {
  return STOP_WORDS.has(token) || STOP_WORDS.has(singular) || token.length < 2 || /^\p{N}+$/u.test(token);
}

export function parseQuery(query: string): ParsedQuery {
  const tokens = tokenize(query);
  const singulars = tokens.map(singularize);
  const labels: string[] = [];
  const words: string[] = [];
  const add = (list: string[], value: string): void => {
    if (!list.includes(value)) list.push(value);
  };

  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as string;
    const singular = singulars[i] as string;
    // Two-word labels are recognised before stop words go, so "hot and dog" is not a hot dog.
    const nextToken = tokens[i + 1];
    const nextSingular = singulars[i + 1];
    if (nextToken !== undefined && nextSingular !== undefined) {
      const pair = cocoLabelForTerm(`${token} ${nextToken}`) ?? cocoLabelForTerm(`${singular} ${nextSingular}`);
      if (pair !== null) {
        add(labels, pair);
        i++;
        continue;
      }
    }
    if (isIgnorable(token, singular)) continue;
    const label = cocoLabelForTerm(token) ?? cocoLabelForTerm(singular);
    if (label !== null) add(labels, label);
    else add(words, singular);
  }
  return { labels, words };
}

function round6(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}

/**
 * The clips that match a query, best first (score descending, then clip index).
 *
 * Every query term (label or word) earns credit for a clip: a label earns the highest
 * confidence at which that object was detected in the clip (if at or above the threshold), a
 * word earns 1 when it occurs in the transcript, anything else earns 0. The score is the mean
 * credit over all terms, in [0, 1], rounded to 6 decimals. A single-label query therefore
 * scores the object's confidence, and a words-only query the fraction of words found.
 * A clip with no credit at all does not match. A query without content terms matches nothing.
 */
export function matchClips(clips: readonly MatchableClip[], query: string | null, options: MatchOptions = {}): Match[] {
  if (query === null) return [];
  const { labels, words } = parseQuery(query);
  const terms = labels.length + words.length;
  if (terms === 0) return [];
  const minConfidence = options.minConfidence ?? DEFAULT_MIN_CONFIDENCE;

  const matches: Match[] = [];
  for (const clip of clips) {
    const reasons: MatchReason[] = [];
    let credit = 0;
    const spokenText = clip.transcript === null ? null : normalizeWords(clip.transcript).join(' ');

    for (const label of labels) {
      let best: number | null = null;
      for (const object of clip.objects) {
        if (object.label.trim().toLowerCase() !== label) continue;
        if (object.max_confidence < minConfidence) continue;
        if (best === null || object.max_confidence > best) best = object.max_confidence;
      }
      if (best !== null) {
        reasons.push({ type: 'object', label, confidence: best });
        credit += best;
      } else if (spokenText !== null && ` ${spokenText} `.includes(` ${label} `)) {
        // Nothing detected (or detection is off), but the label is said: that is evidence too.
        reasons.push({ type: 'transcript', word: label });
        credit += 1;
      }
    }

    if (words.length > 0 && clip.transcript !== null) {
      const spoken = new Set(normalizeWords(clip.transcript));
      for (const word of words) {
        if (!spoken.has(word)) continue;
        reasons.push({ type: 'transcript', word });
        credit += 1;
      }
    }

    if (reasons.length === 0) continue;
    matches.push({
      clip_index: clip.index,
      start_s: clip.start_s,
      end_s: clip.end_s,
      score: round6(Math.min(1, credit / terms)),
      reasons,
    });
  }

  return matches.sort((a, b) => b.score - a.score || a.clip_index - b.clip_index);
}
