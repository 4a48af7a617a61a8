/**
 * Why a clip's transcript or objects are empty, in the words the local stages and the answer
 * use: written here once, so what reads a note (the CLI's advice) compares it, not parses it.
 */

/** Why the local speech stage wrote no transcript when no engine is set. */
export const NO_SPEECH_ENGINE = 'no speech engine configured';

/** The note on a frame the local detector could not look at, for want of a model. */
export const NO_DETECTOR_MODEL_NOTE = 'no detector model configured (set FAVE_DETECTOR_MODEL)';

/** A clip's transcript note, from the reason a stage gave for writing none (empty if it gave none). */
export function noTranscriptNote(reason: string): string {
  return reason === '' ? 'no transcript' : `no transcript: ${reason}`;
}
