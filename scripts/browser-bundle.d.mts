export declare const BROWSER_BUNDLE: Readonly<{
  bundle: true;
  format: 'iife';
  platform: 'browser';
  target: string;
  charset: 'utf8';
  legalComments: 'none';
}>;
