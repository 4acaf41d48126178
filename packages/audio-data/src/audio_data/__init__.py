"""sashimi-audio-data.

SC09, Beethoven, YouTubeMix, any folder of wavs and a built-in synthetic speech-like default;
mu-law and linear quantisation; verified downloads.
"""
