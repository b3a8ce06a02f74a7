"""Staff UI views: thin — parse input, call one service, render."""
