import './base.css';
import './copycode.css';
