import './base.css';
import './copycode.css';
import './patching.css';
import './logitlens.css';
import './features.css';
import './outputs.css';
import './search.css';
import './pictures.css';
