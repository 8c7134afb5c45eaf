// Guest halves of env bindings register their factories with env.ts on import.
import '../bindings/service/guest.js';
